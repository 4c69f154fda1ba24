/**
 * Releases: the Debian package, a signed release folder and its
 * verification.
 * @module
 */
export {
  buildDeb,
  type BuiltDeb,
  DEB_LIB_DIR,
  DEB_PACKAGE,
  type DebOptions,
  pinnedDenoVersion,
  sourceDateEpoch,
} from "./deb.ts";
export {
  type ReleaseCheck,
  ReleaseError,
  SIGNATURE_FILE,
  signRelease,
  SUMS_FILE,
  verifyRelease,
} from "./sums.ts";
export {
  buildRelease,
  type BuiltRelease,
  type ReleaseOptions,
} from "./build.ts";
