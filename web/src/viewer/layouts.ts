/**
 * The viewer's layouts, set up imperatively on one RenderingEngine:
 * stack (one series), mpr (axial/sagittal/coronal with crosshairs), mip (slab MIP/MinIP/average),
 * compare (current and prior side by side, scroll and W/L synchronised), 3d (volume rendering).
 */
import {
  CONSTANTS,
  Enums,
  RenderingEngine,
  cache,
  metaData,
  setVolumesForViewports,
  volumeLoader,
  type Types,
} from "@cornerstonejs/core";
import { SynchronizerManager, synchronizers, utilities as toolUtilities } from "@cornerstonejs/tools";
import type { ImageSeries } from "./dicomweb";
import { createToolGroup, isTouchDevice, type PrimaryTool } from "./tools";

export type Layout = "stack" | "mpr" | "mip" | "compare" | "3d";
export const LAYOUTS: { name: Layout; label: string; volume: boolean }[] = [
  { name: "stack", label: "Stack", volume: false },
  { name: "mpr", label: "MPR", volume: true },
  { name: "mip", label: "MIP", volume: true },
  { name: "compare", label: "Compare", volume: false },
  { name: "3d", label: "3D", volume: true },
];

/** Viewport names per layout; each element is data-testid="viewport-<name>". */
export const VIEWPORTS: Record<Layout, string[]> = {
  stack: ["stack"],
  mpr: ["axial", "sagittal", "coronal"],
  mip: ["mip"],
  compare: ["stack", "prior"],
  "3d": ["volume"],
};

export function parseLayout(value: string | null): Layout {
  return LAYOUTS.some((l) => l.name === value) ? (value as Layout) : "stack";
}

export type SlabMode = "mip" | "minip" | "average";
export const SLAB_BLEND: Record<SlabMode, Enums.BlendModes> = {
  mip: Enums.BlendModes.MAXIMUM_INTENSITY_BLEND,
  minip: Enums.BlendModes.MINIMUM_INTENSITY_BLEND,
  average: Enums.BlendModes.AVERAGE_INTENSITY_BLEND,
};

export const VR_PRESETS = CONSTANTS.VIEWPORT_PRESETS.map((preset) => preset.name).filter((name) => name.startsWith("CT-") || name.startsWith("MR-"));

export interface ActiveLayout {
  layout: Layout;
  viewportIds: string[];
  toolGroupId: string;
  /** The volume's id when the layout shows one. */
  volumeId: string | null;
  /** Slices left out of the volume to stay inside the memory budget (1 = none). */
  volumeStep: number;
  teardown: () => void;
}

export function viewportId(engine: RenderingEngine, name: string): string {
  return `${engine.id}-${name}`;
}

/**
 * The image ids a volume is built from: every slice when it fits in half of the cache budget,
 * else every n-th slice (a lower-resolution MPR instead of a crashed tab on 1,000+ slices).
 */
export function volumeImageIds(series: ImageSeries): { imageIds: string[]; step: number } {
  const bytesPerSlice = Math.max(1, series.rows * series.columns * 4);
  const budget = cache.getMaxCacheSize() * 0.5;
  const step = Math.max(1, Math.ceil((bytesPerSlice * series.imageIds.length) / budget));
  return { imageIds: series.imageIds.filter((_, i) => i % step === 0), step };
}

async function ensureVolume(series: ImageSeries): Promise<{ volumeId: string; step: number }> {
  const { imageIds, step } = volumeImageIds(series);
  const volumeId = `cornerstoneStreamingImageVolume:${series.series.seriesUid}:${step}`;
  let volume = cache.getVolume(volumeId) as Types.IImageVolume | undefined;
  if (!volume) {
    volume = (await volumeLoader.createAndCacheVolume(volumeId, { imageIds })) as Types.IImageVolume;
    // Streams slice by slice in the order of VOLUME_RETRIEVE_STAGES (cornerstone.ts: the middle
    // slice first, then every 4th); arriving slices re-render the viewports showing the volume.
    void (volume as unknown as { load: () => void }).load();
  }
  return { volumeId, step };
}

export interface LayoutInput {
  engine: RenderingEngine;
  layout: Layout;
  elements: Record<string, HTMLDivElement>;
  current: ImageSeries;
  prior: ImageSeries | null;
  primaryTool: PrimaryTool;
}

const BLACK: Types.Point3 = [0, 0, 0];

/** Show `input.layout`; the returned teardown disables its viewports, tools and synchronizers. */
export async function showLayout(input: LayoutInput): Promise<ActiveLayout> {
  const { engine, layout, elements, current } = input;
  const names = VIEWPORTS[layout];
  const ids = names.map((name) => viewportId(engine, name));
  const toolGroupId = `${engine.id}-${layout}`;
  const cleanups: (() => void)[] = [];
  const orientation: Record<string, Enums.OrientationAxis> = {
    axial: Enums.OrientationAxis.AXIAL,
    sagittal: Enums.OrientationAxis.SAGITTAL,
    coronal: Enums.OrientationAxis.CORONAL,
    mip: Enums.OrientationAxis.AXIAL,
  };
  const typeOf = (): Enums.ViewportType => {
    if (layout === "3d") return Enums.ViewportType.VOLUME_3D;
    if (layout === "mpr" || layout === "mip") return Enums.ViewportType.ORTHOGRAPHIC;
    return Enums.ViewportType.STACK;
  };
  engine.setViewports(
    names.map((name, i) => ({
      viewportId: ids[i],
      element: elements[name],
      type: typeOf(),
      defaultOptions: { background: BLACK, orientation: orientation[name] },
    })),
  );
  const kind = layout === "3d" ? "volume3d" : layout === "mpr" ? "mpr" : layout === "mip" ? "mip" : "stack";
  const primary: PrimaryTool = layout === "mpr" ? "Crosshairs" : input.primaryTool;
  createToolGroup(toolGroupId, kind, engine.id, ids, primary);
  cleanups.push(() => {
    for (const id of ids) if (engine.getViewport(id)) engine.disableElement(id);
  });

  let volumeId: string | null = null;
  let volumeStep = 1;
  if (layout === "stack" || layout === "compare") {
    const start = current.reconstructable ? Math.floor(current.imageIds.length / 2) : 0;
    const stack = engine.getViewport(ids[0]) as Types.IStackViewport;
    await stack.setStack(current.imageIds, start);
    toolUtilities.stackPrefetch.enable(elements.stack);
    cleanups.push(() => toolUtilities.stackPrefetch.disable(elements.stack));
    stack.render();
    if (layout === "compare" && input.prior) {
      const prior = engine.getViewport(ids[1]) as Types.IStackViewport;
      await prior.setStack(input.prior.imageIds, nearestIndex(input.prior.imageIds, current.imageIds[start]));
      prior.render();
      cleanups.push(syncScrollByPosition(engine, ids[0], ids[1]));
      const voiId = `${engine.id}-voi`;
      SynchronizerManager.destroySynchronizer(voiId);
      const voi = synchronizers.createVOISynchronizer(voiId, { syncInvertState: false, syncColormap: false });
      for (const id of ids) voi.add({ renderingEngineId: engine.id, viewportId: id });
      cleanups.push(() => SynchronizerManager.destroySynchronizer(voiId));
    }
  } else {
    ({ volumeId, step: volumeStep } = await ensureVolume(current));
    await setVolumesForViewports(engine, [{ volumeId }], ids);
    if (layout === "mip") {
      const viewport = engine.getViewport(ids[0]) as Types.IVolumeViewport;
      viewport.setBlendMode(SLAB_BLEND.mip);
      viewport.setSlabThickness(fullThickness(current));
    }
    if (layout === "3d") {
      const viewport = engine.getViewport(ids[0]) as Types.IVolumeViewport;
      viewport.setProperties({ preset: "CT-Bone" });
    }
    engine.renderViewports(ids);
  }
  return {
    layout,
    viewportIds: ids,
    toolGroupId,
    volumeId,
    volumeStep,
    teardown: () => {
      for (const cleanup of cleanups.reverse()) {
        try {
          cleanup();
        } catch {
          /* a viewport already gone: nothing left to undo */
        }
      }
    },
  };
}

/** The extent of a series along its slice normal in mm (a slab through the whole volume). */
export function fullThickness(series: ImageSeries): number {
  const first = planeOf(series.imageIds[0]);
  const last = planeOf(series.imageIds[series.imageIds.length - 1]);
  if (!first || !last) return 100;
  return Math.max(1, Math.abs(positionAlong(last, first) - positionAlong(first, first)) + 1);
}

interface Plane {
  imagePositionPatient: Types.Point3;
  rowCosines: Types.Point3;
  columnCosines: Types.Point3;
}

function planeOf(imageId: string | undefined): Plane | undefined {
  return imageId ? metadataPlane(imageId) : undefined;
}

function metadataPlane(imageId: string): Plane | undefined {
  const plane = metaData.get("imagePlaneModule", imageId) as Plane | undefined;
  return plane?.imagePositionPatient && plane.rowCosines && plane.columnCosines ? plane : undefined;
}

/** Position of `plane` along the normal of `reference` (mm). */
function positionAlong(plane: Plane, reference: Plane): number {
  const r = reference.rowCosines;
  const c = reference.columnCosines;
  const n = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
  const p = plane.imagePositionPatient;
  return p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
}

/** Index of the image of `imageIds` nearest in slice position to `imageId` (0 if unknown). */
export function nearestIndex(imageIds: string[], imageId: string | undefined): number {
  const target = imageId ? metadataPlane(imageId) : undefined;
  if (!target) return 0;
  const position = positionAlong(target, target);
  let best = 0;
  let distance = Infinity;
  imageIds.forEach((id, index) => {
    const plane = metadataPlane(id);
    if (!plane) return;
    const d = Math.abs(positionAlong(plane, target) - position);
    if (d < distance) {
      distance = d;
      best = index;
    }
  });
  return best;
}

/**
 * Scroll either stack and the other follows to the slice nearest in position along the slice
 * normal (patient coordinates in mm). Studies on different days have different frames of
 * reference: this aligns them by table position, as radiologists compare priors.
 */
function syncScrollByPosition(engine: RenderingEngine, a: string, b: string): () => void {
  const following = new Set<string>();
  const listeners: [HTMLDivElement, EventListener][] = [];
  for (const [sourceId, targetId] of [
    [a, b],
    [b, a],
  ]) {
    const source = engine.getViewport(sourceId) as Types.IStackViewport;
    const handler: EventListener = () => {
      if (following.delete(sourceId)) return;
      const target = engine.getViewport(targetId) as Types.IStackViewport | undefined;
      if (!target) return;
      const index = nearestIndex(target.getImageIds(), source.getCurrentImageId());
      if (index !== target.getCurrentImageIdIndex()) {
        following.add(targetId);
        void target.setImageIdIndex(index);
      }
    };
    source.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, handler);
    listeners.push([source.element, handler]);
  }
  return () => {
    for (const [element, handler] of listeners) element.removeEventListener(Enums.Events.STACK_NEW_IMAGE, handler);
  };
}

export function defaultPrimaryTool(): PrimaryTool {
  return isTouchDevice() ? "StackScroll" : "WindowLevel";
}
