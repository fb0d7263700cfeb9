/**
 * One-time Cornerstone3D setup: core, the DICOM image loader (wadors, with the bearer token on
 * every request), tools, a bounded image cache, and the order in which volumes load.
 */
import { Enums, cache, init as coreInit, utilities, type Types } from "@cornerstonejs/core";
import { init as loaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  AngleTool,
  CrosshairsTool,
  EllipticalROITool,
  KeyImageTool,
  LengthTool,
  PanTool,
  RectangleROITool,
  StackScrollTool,
  TrackballRotateTool,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as toolsInit,
} from "@cornerstonejs/tools";
import { getAccessToken } from "../auth/session";

const MIB = 1024 * 1024;

/**
 * The cache budget: a quarter of the device's memory (navigator.deviceMemory, which browsers
 * report coarsely and cap at 8 GiB) between 384 MiB and 2 GiB. Cornerstone evicts the least
 * recently used images beyond it, so a 1,000+ slice series cannot exhaust the tab.
 */
export function cacheBudgetBytes(): number {
  const deviceGiB = (navigator as Navigator & { deviceMemory?: number }).deviceMemory ?? 4;
  return Math.round(Math.min(2048, Math.max(384, (deviceGiB * 1024) / 4)) * MIB);
}

const { ImageQualityStatus, RequestType } = Enums;

/** A loaded slice also stands in for its neighbours until they arrive (Cornerstone's replicate). */
const NEIGHBOURS: Types.NearbyFrames[] = [
  { offset: -1, imageQualityStatus: ImageQualityStatus.ADJACENT_REPLICATE },
  { offset: 1, imageQualityStatus: ImageQualityStatus.ADJACENT_REPLICATE },
  { offset: 2, imageQualityStatus: ImageQualityStatus.FAR_REPLICATE },
];

/**
 * The order a volume's slices are requested in (Cornerstone's ProgressiveRetrieveImages stages).
 * Without a configuration a StreamingImageVolume requests its slices last to first, so the axial
 * viewport (which opens at the middle slice) stayed blank until half the series had arrived
 * while sagittal and coronal already showed the top slices. Here: the middle slice first (the
 * axial view), then every 4th slice standing in for its neighbours (sagittal and coronal show
 * the whole extent at once), then the rest; requests are sent in this order.
 */
export const VOLUME_RETRIEVE_STAGES: Types.RetrieveStage[] = [
  { id: "middle", positions: [0.5], requestType: RequestType.Interaction, priority: 0, nearbyFrames: NEIGHBOURS },
  { id: "quarter", decimate: 4, offset: 3, requestType: RequestType.Interaction, priority: 1, nearbyFrames: NEIGHBOURS },
  { id: "half", decimate: 4, offset: 1, requestType: RequestType.Interaction, priority: 2, nearbyFrames: NEIGHBOURS },
  { id: "threeQuarters", decimate: 4, offset: 2, requestType: RequestType.Interaction, priority: 3 },
  { id: "all", decimate: 4, offset: 0, requestType: RequestType.Interaction, priority: 4 },
  // A slice whose request failed is asked for once more, after the others.
  { id: "retry", requestType: RequestType.Prefetch, priority: 5 },
];

let started: Promise<void> | null = null;

export function initCornerstone(): Promise<void> {
  started ??= (async () => {
    coreInit();
    loaderInit({
      maxWebWorkers: Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2))),
      // Called before every image request (XHR and streamed fetch alike): the token may have been renewed.
      beforeSend: async () => ({ Authorization: `Bearer ${await getAccessToken()}` }),
    });
    toolsInit();
    cache.setMaxCacheSize(cacheBudgetBytes());
    // Looked up by volume id, then transfer syntax, then "volume": every volume of the viewer.
    utilities.imageRetrieveMetadataProvider.add("volume", { stages: VOLUME_RETRIEVE_STAGES });
    for (const tool of [
      AngleTool,
      CrosshairsTool,
      EllipticalROITool,
      KeyImageTool,
      LengthTool,
      PanTool,
      RectangleROITool,
      StackScrollTool,
      TrackballRotateTool,
      WindowLevelTool,
      ZoomTool,
    ]) {
      addTool(tool);
    }
  })();
  return started;
}
