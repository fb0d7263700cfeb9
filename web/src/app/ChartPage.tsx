export function ChartPage({ patientId }: { patientId: string }) {
  return <main className="page" data-testid="chart" data-patient={patientId} />;
}
