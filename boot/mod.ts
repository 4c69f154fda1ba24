/**
 * Phase Boot: the initramfs builder and the boot flow it runs.
 * @module
 */
export {
  BOOT_PERMISSIONS,
  BuildError,
  buildInitramfs,
  type BuildOptions,
  debianKernel,
  initScript,
  kernelFiles,
  NIC_MODULES,
  type ArtifactsOptions,
  writeArtifacts,
} from "./build.ts";
export { type BootOptions, carriedOptions, cmdlineWords, parseBootOptions } from "./cmdline.ts";
export { BootError, type BootEnvironment, type BootLog, kexec, RUN_DIR, stageOne, stageTwo } from "./flow.ts";
