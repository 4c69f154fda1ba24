/**
 * Phase Boot: the initramfs builder and the boot flow it runs.
 * @module
 */
export {
  type ArtifactsOptions,
  BOOT_PERMISSIONS,
  BuildError,
  buildInitramfs,
  type BuildOptions,
  debianKernel,
  extractVmlinux,
  initScript,
  kernelFiles,
  NIC_MODULES,
  writeArtifacts,
} from "./build.ts";
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
} from "./flow.ts";
