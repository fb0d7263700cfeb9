/**
 * Measurements and key images as a DICOM Comprehensive SR with the TID 1500 Measurement Report
 * template (PS3.16), written and read by @cornerstonejs/adapters. Key images are KeyImage
 * annotations inside the same report (the adapters' KeyImage measurement group), not a KO.
 *
 * Saving sends a new SR (a new version holding every measurement shown) by STOW-RS; opening a
 * study restores the newest SR of the study, so the last save is what comes back.
 */
import { metaData, type Types as CoreTypes } from "@cornerstonejs/core";
import { adaptersSR } from "@cornerstonejs/adapters";
import { annotation, type Types as ToolTypes } from "@cornerstonejs/tools";
import dcmjs from "dcmjs";
import { MEASUREMENT_TOOLS } from "./tools";
import {
  fetchSeriesMetadata,
  forgetSeriesMetadata,
  storeInstance,
  text,
  type ImageSeries,
  type SeriesInfo,
} from "./dicomweb";

const { MeasurementReport } = adaptersSR.Cornerstone3D;
export const SAVED_TOOLS = [...MEASUREMENT_TOOLS, "KeyImage"];
const SERIES_DESCRIPTION = "Vesalius measurements";
const PATIENT_IDENTITY = ["IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "PatientBirthDate", "PatientSex"];

type ToolState = Record<string, Record<string, { data: ToolTypes.Annotation[] }>>;

export interface SaveResult {
  saved: number;
  skipped: number;
}

/** Build the SR for the annotations on `series`' images and STOW it into the study. */
export async function saveMeasurements(studyUid: string, series: ImageSeries[]): Promise<SaveResult> {
  const ours = new Set(series.flatMap((s) => s.imageIds));
  const toolState: ToolState = {};
  let saved = 0;
  let skipped = 0;
  for (const item of annotation.state.getAllAnnotations()) {
    const toolName = item.metadata?.toolName ?? "";
    if (!SAVED_TOOLS.includes(toolName)) continue;
    const imageId = item.metadata?.referencedImageId;
    // Annotations on reformatted (oblique, sagittal, coronal) planes reference no acquired image.
    if (!imageId || !ours.has(imageId)) {
      skipped += 1;
      continue;
    }
    const byTool = (toolState[imageId] ??= {});
    (byTool[toolName] ??= { data: [] }).data.push(item);
    saved += 1;
  }
  if (saved === 0) return { saved, skipped };
  const report = MeasurementReport.generateReport(toolState, metaData, {
    SeriesDescription: SERIES_DESCRIPTION,
    SeriesNumber: "900",
    Manufacturer: "Vesalius",
    ManufacturerModelName: "Vesalius web viewer",
    SoftwareVersions: "1",
  });
  const dataset = report.dataset as Record<string, unknown>;
  delete dataset.ImageComments;
  // dcmjs copies PatientID but not its issuer: without it the archive would see another patient.
  const source = metaData.get("instance", Object.keys(toolState)[0]) as Record<string, unknown> | undefined;
  for (const key of PATIENT_IDENTITY) {
    if (source?.[key] !== undefined && dataset[key] === undefined) dataset[key] = source[key];
  }
  const part10 = dcmjs.data.datasetToDict(dataset).write();
  await storeInstance(studyUid, part10);
  forgetSeriesMetadata(studyUid);
  return { saved, skipped };
}

/**
 * Restore the newest TID 1500 report among the study's SR series onto `series`' images.
 * Returns how many annotations were added.
 */
export async function restoreMeasurements(studyUid: string, srSeries: SeriesInfo[], series: ImageSeries[]): Promise<number> {
  let newest: { dataset: Record<string, unknown>; when: string } | null = null;
  for (const s of srSeries) {
    for (const json of await fetchSeriesMetadata(studyUid, s.seriesUid)) {
      const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(json);
      const template = dataset.ContentTemplateSequence as { TemplateIdentifier?: string } | undefined;
      if (template?.TemplateIdentifier !== "1500") continue;
      const when = `${text(json, "00080023")}${text(json, "00080033")}${text(json, "00200013").padStart(6, "0")}`;
      if (!newest || when > newest.when) newest = { dataset, when };
    }
  }
  if (!newest) return 0;
  const sopToImageId: Record<string, string> = {};
  for (const s of series) {
    for (const imageId of s.imageIds) {
      const match = /\/instances\/([^/]+)\/frames\/(\d+)$/.exec(imageId);
      if (!match) continue;
      sopToImageId[`${match[1]}:${match[2]}`] = imageId;
      if (match[2] === "1") sopToImageId[match[1]] = imageId;
    }
  }
  const state = MeasurementReport.generateToolState(newest.dataset, sopToImageId, metaData, {}) as Record<
    string,
    { annotation: ToolTypes.Annotation }[]
  >;
  let added = 0;
  for (const [toolName, measurements] of Object.entries(state)) {
    if (!SAVED_TOOLS.includes(toolName)) continue;
    for (const measurement of measurements) {
      const item = measurement.annotation;
      const imageId = item.metadata?.referencedImageId;
      if (!item.metadata || !imageId) continue;
      const plane = metaData.get("imagePlaneModule", imageId) as
        | { frameOfReferenceUID: string; rowCosines: CoreTypes.Point3; columnCosines: CoreTypes.Point3 }
        | undefined;
      const metadata = item.metadata;
      metadata.toolName = toolName;
      if (plane) {
        metadata.FrameOfReferenceUID = plane.frameOfReferenceUID;
        const [r, c] = [plane.rowCosines, plane.columnCosines];
        metadata.viewPlaneNormal = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
        metadata.viewUp = [-c[0], -c[1], -c[2]];
      }
      // Statistics (area, HU mean/SD/min/max) are recomputed from the pixels on first render.
      item.invalidated = true;
      annotation.state.addAnnotation(item, metadata.FrameOfReferenceUID ?? "");
      added += 1;
    }
  }
  return added;
}
