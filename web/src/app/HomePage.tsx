/** Home: patient search (name, identifier, birth date) and the worklist of recent studies. */
import { useEffect, useState, type FormEvent } from "react";
import { recentStudies, type StudySummary } from "../api/dicomweb";
import { ageFrom, formatDate, nameText, patientByIdentifier, searchPatients, type Patient, type PatientQuery } from "../api/fhir";
import { Link, navigate, useLocation } from "./router";

type Load<T> = { state: "idle" } | { state: "loading" } | { state: "done"; value: T } | { state: "error"; message: string };

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function HomePage() {
  return (
    <main className="page home">
      <PatientSearch />
      <Worklist />
    </main>
  );
}

function PatientSearch() {
  const { search } = useLocation();
  const initial: PatientQuery = { name: search.get("name") ?? "", identifier: search.get("identifier") ?? "", birthdate: search.get("birthdate") ?? "" };
  const [query, setQuery] = useState<PatientQuery>(initial);
  const [result, setResult] = useState<Load<{ patients: Patient[]; more: boolean }>>({ state: "idle" });
  const asked = search.toString();

  // The search lives in the URL (?name=…), so Back from a chart returns to the same results.
  useEffect(() => {
    const criteria: PatientQuery = { name: search.get("name") ?? "", identifier: search.get("identifier") ?? "", birthdate: search.get("birthdate") ?? "" };
    if (!criteria.name && !criteria.identifier && !criteria.birthdate) {
      setResult({ state: "idle" });
      return;
    }
    const controller = new AbortController();
    setResult({ state: "loading" });
    searchPatients(criteria, controller.signal)
      .then((value) => setResult({ state: "done", value }))
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setResult({ state: "error", message: message(error) });
      });
    return () => controller.abort();
  }, [asked]);

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value?.trim()) params.set(key, value.trim());
    navigate(params.size ? `/?${params.toString()}` : "/");
  };

  return (
    <section className="card" aria-labelledby="search-title">
      <h1 id="search-title">Find a patient</h1>
      <form className="search-form" role="search" onSubmit={submit} data-testid="patient-search">
        <label>
          Name
          <input name="name" type="search" autoComplete="off" value={query.name} onChange={(e) => setQuery({ ...query, name: e.target.value })} />
        </label>
        <label>
          Identifier
          <input name="identifier" type="search" autoComplete="off" placeholder="MRN or system|value" value={query.identifier} onChange={(e) => setQuery({ ...query, identifier: e.target.value })} />
        </label>
        <label>
          Birth date
          <input name="birthdate" type="date" value={query.birthdate} onChange={(e) => setQuery({ ...query, birthdate: e.target.value })} />
        </label>
        <button type="submit">Search</button>
      </form>
      {result.state === "loading" && <p aria-live="polite">Searching…</p>}
      {result.state === "error" && <p role="alert" className="error">{result.message}</p>}
      {result.state === "done" && <PatientResults patients={result.value.patients} more={result.value.more} />}
    </section>
  );
}

function PatientResults({ patients, more }: { patients: Patient[]; more: boolean }) {
  if (patients.length === 0) return <p aria-live="polite">No patient matches.</p>;
  return (
    <>
      <p className="muted" aria-live="polite">
        {patients.length} patient{patients.length === 1 ? "" : "s"}
        {more ? " (more match: narrow the search)" : ""}
      </p>
      <ul className="result-list" data-testid="patient-results">
        {patients.map((patient) => (
          <li key={patient.id}>
            <Link href={`/patients/${encodeURIComponent(patient.id)}`} className="result">
              <strong>{nameText(patient.name)}</strong>
              <span>
                {formatDate(patient.birthDate)} {ageFrom(patient.birthDate) && `(${ageFrom(patient.birthDate)})`} {patient.gender ?? ""}
              </span>
              <span className="muted">{patient.identifier?.map((i) => i.value).filter(Boolean).join(" · ")}</span>
            </Link>
          </li>
        ))}
      </ul>
    </>
  );
}

function Worklist() {
  const [studies, setStudies] = useState<Load<StudySummary[]>>({ state: "loading" });
  const [opening, setOpening] = useState<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    recentStudies(25, controller.signal)
      .then((value) => setStudies({ state: "done", value }))
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setStudies({ state: "error", message: message(error) });
      });
    return () => controller.abort();
  }, []);

  const openChart = async (study: StudySummary): Promise<void> => {
    setOpening(study.studyInstanceUid);
    try {
      const patient = await patientByIdentifier(study.patientId);
      if (patient) navigate(`/patients/${encodeURIComponent(patient.id)}`);
      else navigate(`/?identifier=${encodeURIComponent(study.patientId)}`);
    } finally {
      setOpening(null);
    }
  };

  return (
    <section className="card" aria-labelledby="worklist-title">
      <h2 id="worklist-title">Recent studies</h2>
      {studies.state === "loading" && <p aria-live="polite">Loading studies…</p>}
      {studies.state === "error" && <p role="alert" className="error">{studies.message}</p>}
      {studies.state === "done" && studies.value.length === 0 && <p>No studies in the archive yet.</p>}
      {studies.state === "done" && studies.value.length > 0 && (
        <div className="table-scroll">
          <table className="worklist" data-testid="worklist">
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Patient</th>
                <th scope="col">Modality</th>
                <th scope="col">Description</th>
                <th scope="col" className="num">Images</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {studies.value.map((study) => (
                <tr key={study.studyInstanceUid}>
                  <td data-label="Date">{formatDate(study.date)}</td>
                  <td data-label="Patient">
                    {study.patientName || "(no name)"} <span className="muted">{study.patientId}</span>
                  </td>
                  <td data-label="Modality">{study.modalities.join(", ")}</td>
                  <td data-label="Description">{study.description}</td>
                  <td data-label="Images" className="num">
                    {study.numberOfInstances ?? ""}
                  </td>
                  <td className="actions">
                    <Link href={`/viewer?study=${encodeURIComponent(study.studyInstanceUid)}`} aria-label={`View ${study.description || "study"} of ${study.patientName} (${formatDate(study.date)})`}>
                      View
                    </Link>
                    <button type="button" className="quiet" disabled={opening === study.studyInstanceUid || !study.patientId} onClick={() => void openChart(study)}>
                      Chart
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
