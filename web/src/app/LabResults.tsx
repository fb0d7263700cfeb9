/** Lab results (or vital signs) as a table, and a trend plot over time for each test measured
 * more than once (uPlot). The table is the text alternative of the plots. */
import { useEffect, useMemo, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { ShowMore } from "./ShowMore";
import { conceptText, formatDate, type CodeableConcept, type Resource } from "../api/fhir";

interface Quantity {
  value?: number;
  unit?: string;
  code?: string;
  comparator?: string;
}
interface Range {
  low?: Quantity;
  high?: Quantity;
  text?: string;
}
interface Component {
  code?: CodeableConcept;
  valueQuantity?: Quantity;
}

export interface Measurement {
  key: string;
  name: string;
  time: number; // seconds since the epoch
  date: string;
  value: number | null;
  text: string;
  unit: string;
  range: Range | undefined;
  flag: string;
}

function effective(o: Resource): string {
  return String(o.effectiveDateTime ?? (o.effectivePeriod as { start?: string } | undefined)?.start ?? o.issued ?? "");
}

function codeKey(concept: CodeableConcept | undefined): string {
  const coding = concept?.coding?.find((c) => c.code);
  return coding ? `${coding.system ?? ""}|${coding.code}` : `text|${conceptText(concept)}`;
}

function valueText(o: { valueQuantity?: Quantity; valueString?: string; valueCodeableConcept?: CodeableConcept; valueBoolean?: boolean; valueInteger?: number }): string {
  if (o.valueQuantity?.value !== undefined) return `${o.valueQuantity.comparator ?? ""}${o.valueQuantity.value}`;
  if (o.valueInteger !== undefined) return String(o.valueInteger);
  if (o.valueString !== undefined) return o.valueString;
  if (o.valueCodeableConcept) return conceptText(o.valueCodeableConcept);
  if (o.valueBoolean !== undefined) return o.valueBoolean ? "yes" : "no";
  return "";
}

/** One row per measured value: an Observation, or each component of one (blood pressure). */
export function measurements(observations: Resource[]): Measurement[] {
  const rows: Measurement[] = [];
  for (const o of observations) {
    if (o.status === "entered-in-error" || o.status === "cancelled") continue;
    const date = effective(o);
    const time = Date.parse(date) / 1000;
    const flag = conceptText(o.interpretation as CodeableConcept[] | undefined);
    const ranges = o.referenceRange as Range[] | undefined;
    const name = conceptText(o.code as CodeableConcept);
    const components = (o.component as Component[] | undefined) ?? [];
    const parts = components.length > 0 && o.valueQuantity === undefined ? components.map((c) => ({ code: c.code, valueQuantity: c.valueQuantity, component: true })) : [{ ...(o as object), code: o.code as CodeableConcept, component: false }];
    for (const part of parts) {
      const quantity = (part as { valueQuantity?: Quantity }).valueQuantity;
      const partName = part.component ? `${name}: ${conceptText(part.code)}` : name;
      rows.push({
        key: part.component ? `${codeKey(o.code as CodeableConcept)}/${codeKey(part.code)}` : codeKey(part.code),
        name: partName || "(not coded)",
        time: Number.isFinite(time) ? time : NaN,
        date,
        value: typeof quantity?.value === "number" && !quantity.comparator ? quantity.value : null,
        text: valueText(part as never),
        unit: quantity?.unit ?? quantity?.code ?? "",
        range: part.component ? undefined : ranges?.[0],
        flag,
      });
    }
  }
  return rows;
}

function rangeText(range: Range | undefined): string {
  if (!range) return "";
  if (range.text) return range.text;
  const low = range.low?.value;
  const high = range.high?.value;
  if (low !== undefined && high !== undefined) return `${low}–${high}`;
  if (low !== undefined) return `≥ ${low}`;
  if (high !== undefined) return `≤ ${high}`;
  return "";
}

function abnormal(row: Measurement): boolean {
  if (/^(H|HH|L|LL|A|AA|high|low|abnormal|critical)/i.test(row.flag)) return true;
  if (row.value === null || !row.range) return false;
  return (row.range.low?.value !== undefined && row.value < row.range.low.value) || (row.range.high?.value !== undefined && row.value > row.range.high.value);
}

export function LabResults({ observations, label }: { observations: Resource[]; label: string }) {
  const rows = useMemo(() => measurements(observations), [observations]);
  const trends = useMemo(() => {
    const groups = new Map<string, Measurement[]>();
    for (const row of rows) {
      if (row.value === null || !Number.isFinite(row.time)) continue;
      groups.set(row.key, [...(groups.get(row.key) ?? []), row]);
    }
    return [...groups.values()].filter((g) => g.length >= 2).map((g) => [...g].sort((a, b) => a.time - b.time));
  }, [rows]);

  if (rows.length === 0) return <p className="muted">None recorded.</p>;
  return (
    <div className="labs">
      {trends.length > 0 && (
        <div className="trends" data-testid={`trends-${label.toLowerCase().replace(/\s+/g, "-")}`}>
          {trends.map((series) => (
            <TrendPlot key={series[0].key} series={series} />
          ))}
        </div>
      )}
      <ShowMore total={rows.length} limit={20}>
        {(shown) => (
      <div className="table-scroll">
        <table className="lab-table">
          <caption className="visually-hidden">{label}, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Date</th>
              <th scope="col">Test</th>
              <th scope="col" className="num">Value</th>
              <th scope="col">Unit</th>
              <th scope="col">Reference</th>
              <th scope="col">Flag</th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, shown).map((row, index) => (
              <tr key={`${row.key}-${row.date}-${index}`} className={abnormal(row) ? "abnormal" : undefined}>
                <td data-label="Date">{formatDate(row.date, true)}</td>
                <td data-label="Test">{row.name}</td>
                <td data-label="Value" className="num">
                  {row.text}
                </td>
                <td data-label="Unit">{row.unit}</td>
                <td data-label="Reference">{rangeText(row.range)}</td>
                <td data-label="Flag">{row.flag}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
        )}
      </ShowMore>
    </div>
  );
}

function TrendPlot({ series }: { series: Measurement[] }) {
  const holder = useRef<HTMLDivElement>(null);
  const name = series[0].name;
  const unit = series.find((s) => s.unit)?.unit ?? "";
  const latest = series[series.length - 1];
  useEffect(() => {
    const element = holder.current;
    if (element === null) return;
    const xs = series.map((s) => s.time);
    const ys = series.map((s) => s.value);
    const low = latest.range?.low?.value;
    const high = latest.range?.high?.value;
    const data: uPlot.AlignedData = [xs, ys, ...(low !== undefined ? [xs.map(() => low)] : []), ...(high !== undefined ? [xs.map(() => high)] : [])];
    const style = getComputedStyle(element);
    const accent = style.getPropertyValue("--accent").trim() || "#1f6feb";
    const muted = style.getPropertyValue("--muted").trim() || "#888";
    const axis = { stroke: muted, grid: { stroke: "rgba(128,128,128,0.15)" }, ticks: { stroke: "rgba(128,128,128,0.3)" } };
    const plot = new uPlot(
      {
        width: Math.max(200, element.clientWidth),
        height: 160,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [axis, { ...axis, size: 50 }],
        series: [
          {},
          { label: name, stroke: accent, width: 2, points: { show: true, size: 6, fill: accent } },
          ...(low !== undefined ? [{ label: "low", stroke: muted, dash: [4, 4], width: 1, points: { show: false } }] : []),
          ...(high !== undefined ? [{ label: "high", stroke: muted, dash: [4, 4], width: 1, points: { show: false } }] : []),
        ],
      },
      data,
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, element.clientWidth), height: 160 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series, name, latest]);
  const summary = `${name}: ${series.length} values from ${formatDate(series[0].date)} to ${formatDate(latest.date)}, latest ${latest.text} ${unit}`;
  return (
    <figure className="trend" data-testid="trend">
      <figcaption>
        <strong>{name}</strong> <span className="muted">{unit}</span> · latest <strong>{latest.text}</strong>
      </figcaption>
      <div ref={holder} className="trend-plot" role="img" aria-label={summary} />
    </figure>
  );
}
