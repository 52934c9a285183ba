// A trend's fields as the console shows and edits them (their types are in schema.graphql).

/** The values of each enum with their labels, in order. */
export const CHOICES = {
  technologyReadinessLevel: [
    ["PILOT", "Pilot"],
    ["DEVELOPMENT", "Development"],
    ["DEPLOY", "Deploy"],
  ],
  impactStrength: [
    ["LOW", "Low"],
    ["MEDIUM", "Medium"],
    ["HIGH", "High"],
  ],
  steepl: [
    ["S", "S · Social"],
    ["T", "T · Technological"],
    ["E", "E · Economic or environmental"],
    ["P", "P · Political"],
    ["L", "L · Legal"],
  ],
};

/**
 * The ten data fields in the API's order. kind: text, long (several lines), count (a whole
 * number or empty) or choice (of CHOICES; `empty` names the choice of no value, when allowed).
 */
export const FIELDS = [
  { name: "megatrend", label: "Megatrend", kind: "text", required: true },
  { name: "macrotrend", label: "Macrotrend", kind: "text", required: true },
  {
    name: "challengesAndResearchGaps",
    label: "Challenges and research gaps",
    kind: "long",
    required: true,
  },
  { name: "totalCountOfPublications", label: "Publications", kind: "count",
    hint: "Empty when unknown" },
  { name: "totalCountOfPatents", label: "Patents", kind: "count", hint: "Empty when unknown" },
  { name: "technologyReadinessLevel", label: "Readiness (TRL)", kind: "choice",
    empty: "Not rated" },
  { name: "impactStrength", label: "Impact strength", kind: "choice" },
  { name: "steepl", label: "STEEPL category", kind: "choice" },
  { name: "relevantIndustries", label: "Relevant industries", kind: "text",
    hint: "Separated by commas" },
  { name: "realWorldApplicationAndUseCases", label: "Real-world applications and use cases",
    kind: "long", hint: "Separated by semicolons" },
];

/** The selection of a trend with every field, for queries. */
export const TREND_SELECTION = `id ${FIELDS.map((field) => field.name).join(" ")} updatedAt`;

/** The label of an enum value ("High" for impactStrength HIGH); the value when unknown. */
export function choiceLabel(field, value) {
  return CHOICES[field]?.find(([choice]) => choice === value)?.[1] ?? value;
}

/** The <option>s of an enum, after one for "no value" labelled `empty` when given. */
export function choiceOptions(field, empty = null) {
  const options = CHOICES[field].map(([value, label]) => new Option(label, value));
  return empty === null ? options : [new Option(empty, ""), ...options];
}
