/**
 * Phase provider: serves signed boot manifests, boot artifacts (with HTTP
 * ranges and validators) and runs jobs over HTTP.
 * @module
 */
export {
  ArtifactStore,
  CHANNELS,
  MANIFEST_FILE,
  NAME_PATTERN,
  sha256File,
} from "./artifacts.ts";
export type { ArtifactFile, ArtifactStoreOptions } from "./artifacts.ts";
export {
  artifactRole,
  buildManifest,
  type BuildManifestOptions,
  ManifestPublisher,
} from "./manifest_publisher.ts";
export { type JobEndpointContext } from "./jobs.ts";
export { httpTransport, type HttpTransportOptions } from "./transport.ts";
export { Metrics } from "./metrics.ts";
export {
  hostArch,
  type Provider,
  ProviderError,
  type ProviderOptions,
  seedArtifacts,
  startProvider,
  writeHelloJob,
} from "./server.ts";
export {
  download,
  DownloadError,
  type DownloadOptions,
  type DownloadProgress,
  type DownloadResult,
  fetchJson,
} from "./client.ts";
// Types the provider's API uses, so its documentation is complete from here.
export type { PublishedManifest } from "./manifest_publisher.ts";
export type { ListenerLimits, ListenerStats } from "./listener.ts";
export type { StatusArtifact, StatusDocument } from "./status_page.ts";
