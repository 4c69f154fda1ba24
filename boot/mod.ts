/**
 * Phase Boot: the initramfs builder and the boot flow it runs.
 * @module
 */
export {
  type ArtifactsOptions,
  BOOT_PERMISSIONS,
  buildInitramfs,
  type BuildOptions,
  debianKernel,
  extractVmlinux,
  initScript,
  kernelFiles,
  NIC_MODULES,
  writeArtifacts,
} from "./build.ts";
export { BuildError, runTool, type ToolOptions } from "./tool.ts";
export {
  ElfError,
  elfInterpreter,
  elfMachine,
  elfNeeded,
  isStaticElf,
} from "./elf.ts";
export {
  type BootTarget,
  bootTarget,
  defaultCmdline,
  hostTarget,
} from "./target.ts";
export {
  debianUserland,
  neededLibraries,
  targetDeno,
  USERLAND_PACKAGES,
} from "./userland.ts";
export {
  type BootOptions,
  carriedOptions,
  cmdlineWords,
  parseBootOptions,
} from "./cmdline.ts";
export {
  type BootEnvironment,
  BootError,
  type BootLog,
  planKexec,
  RUN_DIR,
  stageOne,
  stageTwo,
  type StageTwoInputs,
  stageTwoInputs,
} from "./flow.ts";
export {
  HANDOVER_DIR,
  type HandoverManifest,
  type HandoverOptions,
  handoverUsable,
  MAX_HANDOVER_MANIFEST,
  readHandoverManifest,
  takeHandedOver,
  writeHandoverInitrd,
} from "./handover.ts";
export {
  bakeDenoCache,
  type BakeOptions,
  IMAGE_DENO_DIR,
} from "./deno_cache.ts";
export {
  buildDiskImage,
  type DiskImage,
  type DiskImageOptions,
  embedBiosBoot,
  grubConfig,
  type ImageBootSettings,
  imageCmdline,
} from "./image.ts";
