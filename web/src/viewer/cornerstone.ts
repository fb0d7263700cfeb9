/**
 * One-time Cornerstone3D setup: core, the DICOM image loader (wadors, with the bearer token on
 * every request), tools, and a bounded image cache.
 */
import { cache, init as coreInit } from "@cornerstonejs/core";
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
