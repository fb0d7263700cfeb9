/**
 * Tool groups and bindings. Mouse: left = the chosen tool, right = zoom, middle = pan, wheel =
 * scroll. Touch: one finger = the chosen tool, two-finger pinch = zoom, three-finger drag =
 * scroll (Cornerstone's touch dispatch maps one finger to the left-button binding).
 */
import {
  AngleTool,
  CrosshairsTool,
  EllipticalROITool,
  Enums as ToolEnums,
  KeyImageTool,
  LengthTool,
  PanTool,
  RectangleROITool,
  StackScrollTool,
  ToolGroupManager,
  TrackballRotateTool,
  WindowLevelTool,
  ZoomTool,
  type Types as ToolTypes,
} from "@cornerstonejs/tools";

const { MouseBindings } = ToolEnums;

export type PrimaryTool =
  | "WindowLevel"
  | "Pan"
  | "Zoom"
  | "StackScroll"
  | "Length"
  | "Angle"
  | "EllipticalROI"
  | "RectangleROI"
  | "Crosshairs";

export const PRIMARY_TOOLS: { name: PrimaryTool; label: string }[] = [
  { name: "WindowLevel", label: "W/L" },
  { name: "StackScroll", label: "Scroll" },
  { name: "Pan", label: "Pan" },
  { name: "Zoom", label: "Zoom" },
  { name: "Length", label: "Length" },
  { name: "Angle", label: "Angle" },
  { name: "EllipticalROI", label: "Ellipse" },
  { name: "RectangleROI", label: "Rectangle" },
];

export const MEASUREMENT_TOOLS = [LengthTool.toolName, AngleTool.toolName, EllipticalROITool.toolName, RectangleROITool.toolName];

export type GroupKind = "stack" | "mpr" | "mip" | "volume3d";

const primary = [{ mouseButton: MouseBindings.Primary }];

export function isTouchDevice(): boolean {
  return window.matchMedia("(pointer: coarse)").matches;
}

/** Create (or recreate) the tool group of one layout part and add its viewports. */
export function createToolGroup(
  id: string,
  kind: GroupKind,
  renderingEngineId: string,
  viewportIds: string[],
  initialPrimary: PrimaryTool,
): ToolTypes.IToolGroup {
  ToolGroupManager.destroyToolGroup(id);
  const group = ToolGroupManager.createToolGroup(id);
  if (!group) throw new Error(`tool group ${id} could not be created`);
  // Viewports first: crosshairs need to see all of them when they become active.
  for (const viewportId of viewportIds) group.addViewport(viewportId, renderingEngineId);
  if (kind === "volume3d") {
    group.addTool(TrackballRotateTool.toolName);
    group.addTool(ZoomTool.toolName);
    group.addTool(PanTool.toolName);
    group.setToolActive(TrackballRotateTool.toolName, { bindings: primary });
    group.setToolActive(ZoomTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }],
    });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }, { numTouchPoints: 3 }] });
  } else {
    for (const name of [WindowLevelTool.toolName, PanTool.toolName, ZoomTool.toolName, StackScrollTool.toolName]) {
      group.addTool(name);
    }
    for (const name of MEASUREMENT_TOOLS) group.addTool(name);
    if (kind === "stack") group.addTool(KeyImageTool.toolName);
    if (kind === "mpr") {
      group.addTool(CrosshairsTool.toolName, {
        getReferenceLineColor: (viewportId: string) => CROSSHAIR_COLORS[viewportId.split("-").pop() ?? ""] ?? "rgb(200, 200, 200)",
        // Rotating a line gives the oblique reformat; dragging its slab handles thickens it.
        getReferenceLineControllable: () => true,
        getReferenceLineDraggableRotatable: () => true,
        getReferenceLineSlabThicknessControlsOn: () => true,
      });
    }
    group.setToolActive(ZoomTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }],
    });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(StackScrollTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Wheel }, { numTouchPoints: 3 }],
    });
    for (const name of MEASUREMENT_TOOLS) group.setToolPassive(name);
    if (kind === "stack") group.setToolEnabled(KeyImageTool.toolName);
    setPrimaryTool(group, initialPrimary);
  }
  return group;
}

const CROSSHAIR_COLORS: Record<string, string> = {
  axial: "rgb(200, 0, 0)",
  sagittal: "rgb(200, 200, 0)",
  coronal: "rgb(0, 200, 0)",
};

/** Make `tool` the left-button / one-finger tool of `group`, the previous one passive. */
export function setPrimaryTool(group: ToolTypes.IToolGroup, tool: PrimaryTool): void {
  const current = group.getActivePrimaryMouseButtonTool();
  if (current === tool) return;
  if (current) {
    if (current === StackScrollTool.toolName) {
      group.setToolActive(current, { bindings: [{ mouseButton: MouseBindings.Wheel }, { numTouchPoints: 3 }] });
    } else if (current === ZoomTool.toolName) {
      group.setToolActive(current, { bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }] });
    } else if (current === PanTool.toolName) {
      group.setToolActive(current, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    } else {
      group.setToolPassive(current);
    }
  }
  if (!group.hasTool(tool)) return;
  const keep = group.getToolOptions(tool)?.bindings ?? [];
  group.setToolActive(tool, { bindings: [...keep.filter((b) => b.mouseButton !== MouseBindings.Primary), ...primary] });
}
