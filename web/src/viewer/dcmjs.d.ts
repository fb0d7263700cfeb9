// dcmjs ships no type declarations: the little of it the viewer uses.
declare module "dcmjs" {
  const dcmjs: {
    data: {
      DicomMetaDictionary: {
        naturalizeDataset(dataset: unknown): Record<string, unknown>;
        denaturalizeDataset(dataset: unknown): Record<string, unknown>;
        uid(): string;
        date(): string;
        time(): string;
      };
      datasetToDict(dataset: unknown): { write(): ArrayBuffer };
    };
  };
  export default dcmjs;
}
