/**
 * The diagnostic viewer (Cornerstone3D): stack with W/L presets and cine, MPR with crosshairs,
 * slab MIP/MinIP/average, volume rendering, prior comparison, measurements saved as DICOM SR.
 *
 * URL: /viewer?study=UID[&prior=UID][&layout=stack|mpr|mip|compare|3d]
 * Test signals: data-testid="viewer" gets data-ready="true" when the first viewport of the
 * layout shows a non-blank image; each viewport element data-testid="viewport-<name>" gets
 * data-rendered="true" after its first non-blank render (see readiness.ts).
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Enums, RenderingEngine, eventTarget, type Types } from "@cornerstonejs/core";
import { Enums as ToolEnums, KeyImageTool, ToolGroupManager, annotation, utilities as toolUtilities } from "@cornerstonejs/tools";
import { initCornerstone } from "./cornerstone";
import {
  NON_IMAGE_MODALITIES,
  fetchSeries,
  fetchStudy,
  findPrior,
  loadImageSeries,
  mainSeries,
  type ImageSeries,
  type SeriesInfo,
  type StudyInfo,
} from "./dicomweb";
import {
  LAYOUTS,
  SLAB_BLEND,
  VIEWPORTS,
  VR_PRESETS,
  defaultPrimaryTool,
  fullThickness,
  parseLayout,
  showLayout,
  viewportId,
  type ActiveLayout,
  type Layout,
  type SlabMode,
} from "./layouts";
import { watchRendered } from "./readiness";
import { restoreMeasurements, saveMeasurements } from "./sr";
import { PRIMARY_TOOLS, setPrimaryTool, type PrimaryTool } from "./tools";
import { Overlay } from "./Overlay";
import { MeasurementList } from "./MeasurementList";
import "./viewer.css";

export const WL_PRESETS: { name: string; width: number; center: number }[] = [
  { name: "Brain", width: 80, center: 40 },
  { name: "Soft tissue", width: 350, center: 50 },
  { name: "Abdomen", width: 400, center: 40 },
  { name: "Lung", width: 1500, center: -600 },
  { name: "Bone", width: 2000, center: 300 },
];

interface Loaded {
  study: StudyInfo;
  series: SeriesInfo[];
  current: ImageSeries;
}

interface Prior {
  study: StudyInfo;
  series: ImageSeries;
}

let engineCount = 0;

function setUrlLayout(layout: Layout): void {
  const url = new URL(window.location.href);
  url.searchParams.set("layout", layout);
  window.history.replaceState(window.history.state, "", url);
}

export function Viewer({ studyUid, priorUid }: { studyUid: string; priorUid?: string }) {
  const [layout, setLayout] = useState<Layout>(() => parseLayout(new URLSearchParams(window.location.search).get("layout")));
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  // The prior study (Compare) is looked up after the current study is on screen.
  const [prior, setPrior] = useState<Prior | null>(null);
  const [priorLooked, setPriorLooked] = useState(false);
  const [seriesUid, setSeriesUid] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string>("Loading study…");
  const [ready, setReady] = useState(false);
  const [active, setActive] = useState<ActiveLayout | null>(null);
  const [primaryTool, setPrimary] = useState<PrimaryTool>(defaultPrimaryTool);
  const [slabMode, setSlabMode] = useState<SlabMode>("mip");
  const [slab, setSlab] = useState<number>(0);
  const [preset3d, setPreset3d] = useState<string>("CT-Bone");
  const [cine, setCine] = useState<{ playing: boolean; fps: number }>({ playing: false, fps: 20 });
  const [tab, setTab] = useState(0);
  const [measurementsVersion, setMeasurementsVersion] = useState(0);
  const engineRef = useRef<RenderingEngine | null>(null);
  const elements = useRef<Record<string, HTMLDivElement>>({});
  const gridRef = useRef<HTMLDivElement | null>(null);

  // Study, series, prior and the restored measurements. Each is asked for once: the study and
  // its series together, then the main series' metadata; the current study is shown before
  // the prior is looked up (its QIDO answer is its study record) and measurements restored.
  useEffect(() => {
    let cancelled = false;
    setPrior(null);
    setPriorLooked(false);
    (async () => {
      await initCornerstone();
      engineRef.current ??= new RenderingEngine(`vesalius-${(engineCount += 1)}`);
      const [study, series] = await Promise.all([fetchStudy(studyUid), fetchSeries(studyUid)]);
      const main = mainSeries(series);
      if (!main) throw new Error("This study has no images to show.");
      const current = await loadImageSeries(studyUid, main);
      if (cancelled) return;
      setLoaded({ study, series, current });
      setSeriesUid(main.seriesUid);
      const lookup = (async () => {
        const priorStudy = priorUid ? await fetchStudy(priorUid) : await findPrior(study, main.modality).catch(() => null);
        if (!priorStudy) return;
        const priorMain = mainSeries((await fetchSeries(priorStudy.studyUid)).filter((s) => s.modality === main.modality));
        if (!priorMain) return;
        const priorSeries = await loadImageSeries(priorStudy.studyUid, priorMain);
        if (!cancelled) setPrior({ study: priorStudy, series: priorSeries });
      })()
        .catch((e: unknown) => {
          if (!cancelled) setError(`Prior study: ${e instanceof Error ? e.message : String(e)}`);
        })
        .finally(() => !cancelled && setPriorLooked(true));
      // Measurements may sit on any image series of the study: register them all first.
      const imageSeries = [current];
      for (const s of series) {
        if (s.seriesUid !== main.seriesUid && !NON_IMAGE_MODALITIES.has(s.modality)) imageSeries.push(await loadImageSeries(studyUid, s));
      }
      const restored = await restoreMeasurements(studyUid, series.filter((s) => s.modality === "SR"), imageSeries);
      if (cancelled) return;
      if (restored > 0) {
        setStatus(`${restored} saved measurement${restored === 1 ? "" : "s"} restored`);
        engineRef.current?.render();
      } else setStatus("");
      setMeasurementsVersion((v) => v + 1);
      await lookup;
    })().catch((e: unknown) => {
      if (!cancelled) setError(e instanceof Error ? e.message : String(e));
    });
    return () => {
      cancelled = true;
    };
  }, [studyUid, priorUid]);

  // The series shown (the series picker changes it).
  const [current, setCurrent] = useState<ImageSeries | null>(null);
  useEffect(() => {
    if (!loaded || !seriesUid) return;
    if (seriesUid === loaded.current.series.seriesUid) {
      setCurrent(loaded.current);
      return;
    }
    const info = loaded.series.find((s) => s.seriesUid === seriesUid);
    if (!info) return;
    let cancelled = false;
    loadImageSeries(studyUid, info)
      .then((s) => !cancelled && setCurrent(s))
      .catch((e: unknown) => setError(String(e)));
    return () => {
      cancelled = true;
    };
  }, [loaded, seriesUid, studyUid]);

  const effectiveLayout: Layout = useMemo(() => {
    if (!current) return layout;
    const def = LAYOUTS.find((l) => l.name === layout);
    if (def?.volume && !current.reconstructable) return "stack";
    if (layout === "compare" && !prior) return "stack";
    return layout;
  }, [layout, current, prior]);
  // Opened as Compare: wait for the prior lookup instead of showing the stack first.
  const awaitingPrior = layout === "compare" && !priorLooked;
  const comparePrior = effectiveLayout === "compare" ? prior : null;

  // Set up the layout's viewports whenever the layout or the series changes.
  useEffect(() => {
    const engine = engineRef.current;
    if (!engine || !current || !loaded || awaitingPrior) return;
    let cancelled = false;
    let shown: ActiveLayout | null = null;
    const stops: (() => void)[] = [];
    setReady(false);
    setCine((c) => ({ ...c, playing: false }));
    setTab(0);
    const names = VIEWPORTS[effectiveLayout];
    names.forEach((name, index) => {
      const element = elements.current[name];
      if (element) stops.push(watchRendered(element, index === 0 ? () => !cancelled && setReady(true) : undefined));
    });
    showLayout({
      engine,
      layout: effectiveLayout,
      elements: elements.current,
      current,
      prior: comparePrior?.series ?? null,
      primaryTool,
    })
      .then((result) => {
        shown = result;
        if (cancelled) result.teardown();
        else {
          setActive(result);
          if (effectiveLayout === "mip") setSlab(fullThickness(current));
        }
      })
      .catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
      for (const stop of stops) stop();
      const stack = elements.current.stack;
      if (stack) {
        try {
          toolUtilities.cine.stopClip(stack);
        } catch {
          /* no clip was playing */
        }
      }
      shown?.teardown();
      setActive(null);
    };
    // primaryTool is applied by its own effect, not by rebuilding the layout.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [effectiveLayout, current, loaded, awaitingPrior, comparePrior]);

  // Keep the Cornerstone canvases the size of their elements.
  useEffect(() => {
    const grid = gridRef.current;
    const engine = engineRef.current;
    if (!grid || !engine) return;
    const observer = new ResizeObserver(() => engine.resize(true, true));
    observer.observe(grid);
    return () => observer.disconnect();
  }, [loaded]);

  useEffect(() => engineRef.current?.resize(true, true), [tab]);

  // Unmount: free the engine, the tool groups and the annotations of this study.
  useEffect(
    () => () => {
      const engine = engineRef.current;
      if (!engine) return;
      for (const group of ToolGroupManager.getAllToolGroups()) {
        if (group.id.startsWith(`${engine.id}-`)) ToolGroupManager.destroyToolGroup(group.id);
      }
      annotation.state.removeAllAnnotations();
      engine.destroy();
      engineRef.current = null;
    },
    [],
  );

  useEffect(() => {
    if (!active || active.layout === "3d" || active.layout === "mpr") return;
    const group = ToolGroupManager.getToolGroup(active.toolGroupId);
    if (group) setPrimaryTool(group, primaryTool);
  }, [primaryTool, active]);

  // Measurements list follows the annotation state.
  useEffect(() => {
    const bump = (): void => setMeasurementsVersion((v) => v + 1);
    const names = [
      ToolEnums.Events.ANNOTATION_COMPLETED,
      ToolEnums.Events.ANNOTATION_MODIFIED,
      ToolEnums.Events.ANNOTATION_REMOVED,
      ToolEnums.Events.ANNOTATION_ADDED,
    ];
    for (const name of names) eventTarget.addEventListener(name, bump);
    return () => {
      for (const name of names) eventTarget.removeEventListener(name, bump);
    };
  }, []);

  const viewports = useCallback((): Types.IViewport[] => {
    const engine = engineRef.current;
    if (!engine || !active) return [];
    return active.viewportIds.map((id) => engine.getViewport(id)).filter((v): v is Types.IViewport => Boolean(v));
  }, [active]);

  const applyPreset = (width: number, center: number): void => {
    for (const viewport of viewports()) {
      if (viewport.type === Enums.ViewportType.VOLUME_3D) continue;
      (viewport as Types.IStackViewport).setProperties({ voiRange: { lower: center - width / 2, upper: center + width / 2 } });
      viewport.render();
    }
  };

  const applySlab = (mode: SlabMode, thickness: number): void => {
    setSlabMode(mode);
    setSlab(thickness);
    for (const viewport of viewports()) {
      const volume = viewport as Types.IVolumeViewport;
      volume.setBlendMode(SLAB_BLEND[mode]);
      volume.setSlabThickness(Math.max(0.1, thickness));
      volume.render();
    }
  };

  const apply3dPreset = (preset: string): void => {
    setPreset3d(preset);
    for (const viewport of viewports()) {
      (viewport as Types.IVolumeViewport).setProperties({ preset });
      viewport.render();
    }
  };

  const toggleCine = (): void => {
    const element = elements.current.stack;
    if (!element) return;
    if (cine.playing) toolUtilities.cine.stopClip(element);
    else toolUtilities.cine.playClip(element, { framesPerSecond: cine.fps, loop: true });
    setCine({ ...cine, playing: !cine.playing });
  };

  const changeFps = (fps: number): void => {
    const element = elements.current.stack;
    setCine({ ...cine, fps });
    if (element && cine.playing) {
      toolUtilities.cine.stopClip(element);
      toolUtilities.cine.playClip(element, { framesPerSecond: fps, loop: true });
    }
  };

  const toggleKeyImage = (): void => {
    const engine = engineRef.current;
    if (!engine) return;
    const viewport = engine.getViewport(viewportId(engine, "stack")) as Types.IStackViewport | undefined;
    if (!viewport) return;
    const imageId = viewport.getCurrentImageId();
    const existing = annotation.state
      .getAllAnnotations()
      .filter((a) => a.metadata?.toolName === KeyImageTool.toolName && a.metadata.referencedImageId === imageId);
    if (existing.length > 0) {
      for (const a of existing) if (a.annotationUID) annotation.state.removeAnnotation(a.annotationUID);
    } else {
      const [width, height] = [viewport.canvas.clientWidth, viewport.canvas.clientHeight];
      const point = viewport.canvasToWorld([width / 2, height / 2]);
      const item = KeyImageTool.createAnnotationForViewport(viewport, {
        data: { handles: { points: [point] }, label: "Key image", seriesLevel: false, isPoint: false },
      });
      annotation.state.addAnnotation(item, viewport.element);
    }
    viewport.render();
    setMeasurementsVersion((v) => v + 1);
  };

  const save = async (): Promise<void> => {
    if (!loaded) return;
    setStatus("Saving…");
    try {
      const imageSeries = [loaded.current];
      if (current && current !== loaded.current) imageSeries.push(current);
      const { saved, skipped } = await saveMeasurements(studyUid, imageSeries);
      setStatus(
        saved === 0
          ? "Nothing to save: draw a measurement on an acquired image first."
          : `Saved ${saved} measurement${saved === 1 ? "" : "s"} as DICOM SR` +
              (skipped ? ` (${skipped} on reformatted planes not saved)` : ""),
      );
    } catch (e) {
      setStatus(`Save failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const names = VIEWPORTS[effectiveLayout];
  const isVolume = effectiveLayout === "mpr" || effectiveLayout === "mip" || effectiveLayout === "3d";
  const imageSeriesList = loaded?.series.filter((s) => !NON_IMAGE_MODALITIES.has(s.modality)) ?? [];

  return (
    <div className="vv-root" data-testid="viewer" data-ready={ready ? "true" : undefined} data-layout={effectiveLayout}>
      <div className="vv-toolbar" role="toolbar" aria-label="Viewer tools">
        <div className="vv-group" aria-label="Layout">
          {LAYOUTS.map((l) => (
            <button
              key={l.name}
              type="button"
              aria-pressed={effectiveLayout === l.name}
              data-testid={`layout-${l.name}`}
              disabled={!current || (l.volume && !current.reconstructable) || (l.name === "compare" && !prior)}
              onClick={() => {
                setLayout(l.name);
                setUrlLayout(l.name);
              }}
            >
              {l.label}
            </button>
          ))}
        </div>
        {!isVolume || effectiveLayout === "mip" ? (
          <div className="vv-group" aria-label="Mouse tool">
            {PRIMARY_TOOLS.filter((t) => effectiveLayout !== "mip" || !["Length", "Angle", "EllipticalROI", "RectangleROI"].includes(t.name)).map((t) => (
              <button key={t.name} type="button" data-testid={`tool-${t.name}`} aria-pressed={primaryTool === t.name} onClick={() => setPrimary(t.name)}>
                {t.label}
              </button>
            ))}
          </div>
        ) : null}
        {effectiveLayout !== "3d" ? (
          <div className="vv-group" aria-label="Window presets">
            {WL_PRESETS.map((p) => (
              <button key={p.name} type="button" data-testid={`preset-${p.name.toLowerCase().replace(" ", "-")}`} onClick={() => applyPreset(p.width, p.center)}>
                {p.name}
              </button>
            ))}
          </div>
        ) : null}
        {effectiveLayout === "mip" ? (
          <div className="vv-group" aria-label="Slab">
            <select data-testid="slab-mode" value={slabMode} onChange={(e) => applySlab(e.target.value as SlabMode, slab)}>
              <option value="mip">MIP</option>
              <option value="minip">MinIP</option>
              <option value="average">Average</option>
            </select>
            <label>
              Slab {Math.round(slab)} mm
              <input
                data-testid="slab-thickness"
                type="range"
                min={1}
                max={current ? Math.ceil(fullThickness(current)) : 100}
                value={slab}
                onChange={(e) => applySlab(slabMode, Number(e.target.value))}
              />
            </label>
          </div>
        ) : null}
        {effectiveLayout === "3d" ? (
          <div className="vv-group" aria-label="Volume rendering preset">
            <select data-testid="vr-preset" value={preset3d} onChange={(e) => apply3dPreset(e.target.value)}>
              {VR_PRESETS.map((name) => (
                <option key={name}>{name}</option>
              ))}
            </select>
          </div>
        ) : null}
        {current?.multiFrame && (effectiveLayout === "stack" || effectiveLayout === "compare") ? (
          <div className="vv-group" aria-label="Cine">
            <button type="button" data-testid="cine-toggle" onClick={toggleCine}>
              {cine.playing ? "Pause" : "Play"}
            </button>
            <label>
              {cine.fps} fps
              <input type="range" min={1} max={60} value={cine.fps} data-testid="cine-fps" onChange={(e) => changeFps(Number(e.target.value))} />
            </label>
          </div>
        ) : null}
        {effectiveLayout === "stack" || effectiveLayout === "compare" ? (
          <div className="vv-group" aria-label="Report">
            <button type="button" data-testid="key-image" onClick={toggleKeyImage}>
              Key image
            </button>
            <button type="button" data-testid="save-measurements" onClick={() => void save()}>
              Save
            </button>
          </div>
        ) : null}
        {imageSeriesList.length > 1 ? (
          <select className="vv-series" aria-label="Series" data-testid="series-select" value={seriesUid ?? ""} onChange={(e) => setSeriesUid(e.target.value)}>
            {imageSeriesList.map((s) => (
              <option key={s.seriesUid} value={s.seriesUid}>
                {s.modality} {s.number}: {s.description || "(no description)"} ({s.instances})
              </option>
            ))}
          </select>
        ) : null}
      </div>
      {error ? (
        <p className="vv-error" role="alert">
          {error}
        </p>
      ) : null}
      {status ? (
        <p className="vv-status" role="status" data-testid="viewer-status">
          {status}
          {active && active.volumeStep > 1 ? ` · volume uses every ${active.volumeStep}th slice to stay within memory` : ""}
        </p>
      ) : active && active.volumeStep > 1 ? (
        <p className="vv-status" role="status">Volume uses every {active.volumeStep}th slice to stay within memory.</p>
      ) : null}
      {names.length > 1 ? (
        <div className="vv-tabs" role="tablist" aria-label="Viewports">
          {names.map((name, index) => (
            <button key={name} type="button" role="tab" aria-selected={tab === index} onClick={() => setTab(index)}>
              {name}
            </button>
          ))}
        </div>
      ) : null}
      <div className="vv-body">
        <div ref={gridRef} className={`vv-grid vv-count-${names.length}`}>
          {names.map((name, index) => (
            <div key={`${effectiveLayout}-${name}`} className={`vv-cell${tab === index ? " vv-tab-active" : ""}`}>
              <div
                className="vv-viewport"
                data-testid={`viewport-${name}`}
                ref={(element) => {
                  if (element) elements.current[name] = element;
                }}
                onContextMenu={(e) => e.preventDefault()}
              />
              {active && engineRef.current && loaded ? (
                <Overlay
                  engine={engineRef.current}
                  viewportId={viewportId(engineRef.current, name)}
                  name={name}
                  study={name === "prior" && prior ? prior.study : loaded.study}
                  series={name === "prior" && prior ? prior.series.series : (current ?? loaded.current).series}
                />
              ) : null}
            </div>
          ))}
        </div>
        {effectiveLayout === "stack" || effectiveLayout === "compare" ? (
          <MeasurementList version={measurementsVersion} engine={engineRef.current} />
        ) : null}
      </div>
    </div>
  );
}
