// The words of the rule language (SPEC §4) as the Audience page shows them.

/** Every operator of SPEC §4.2, with its label and the shape of its operand. */
export const OPERATORS = {
  eq: { label: "is", shape: "scalar" },
  neq: { label: "is not", shape: "scalar" },
  in: { label: "is one of", shape: "list" },
  not_in: { label: "is none of", shape: "list" },
  gt: { label: "is more than", shape: "number" },
  gte: { label: "is at least", shape: "number" },
  lt: { label: "is less than", shape: "number" },
  lte: { label: "is at most", shape: "number" },
  between: { label: "is between", shape: "range" },
  exists: { label: "is set", shape: "none" },
  not_exists: { label: "is not set", shape: "none" },
  contains: { label: "contains", shape: "scalar" },
  starts_with: { label: "starts with", shape: "text" },
  ends_with: { label: "ends with", shape: "text" },
  before: { label: "is before", shape: "instant" },
  after: { label: "is after", shape: "instant" },
  within_last: { label: "is within the last", shape: "duration" },
  more_than_ago: { label: "is longer ago than", shape: "duration" },
  near: { label: "is near", shape: "point" },
  // v1.2 (SPEC §4.4)
  within_next: { label: "is within the next", shape: "duration" },
  anniversary_within_next: { label: "has an anniversary in the next", shape: "days" },
  anniversary_within_last: { label: "had an anniversary in the last", shape: "days" },
  matches: { label: "matches the pattern", shape: "text" },
};

/** Operators of a count or an aggregate (sum, avg, min, max). */
export const MEASURE_OPERATORS = ["gte", "gt", "eq", "neq", "lt", "lte", "between"];

/** Operators that compare strings, where `ignore_case` applies. */
export const TEXT_OPERATORS = new Set([
  "eq",
  "neq",
  "in",
  "not_in",
  "contains",
  "starts_with",
  "ends_with",
  "matches",
]);

/** Which operators fit which kind of value. `any` offers every operator. */
export const KIND_OPERATORS = {
  text: ["eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with", "matches", "exists", "not_exists"],
  enum: ["eq", "neq", "in", "not_in", "exists", "not_exists"],
  number: ["eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"],
  date: [
    "before",
    "after",
    "within_last",
    "more_than_ago",
    "within_next",
    "anniversary_within_next",
    "anniversary_within_last",
    "eq",
    "neq",
    "exists",
    "not_exists",
  ],
  place: ["near", "exists", "not_exists"],
  any: Object.keys(OPERATORS),
};

export const DEVICE_TYPES = [
  ["desktop", "Desktop"],
  ["mobile", "Mobile"],
  ["tablet", "Tablet"],
];

export const SUBSCRIPTION_SOURCES = [
  ["qr_code", "QR code"],
  ["shareable_link", "Shareable link"],
  ["form", "Form"],
  ["checkout_opt_in", "Checkout opt-in"],
  ["capture", "Capture"],
  ["channel", "Channel"],
  ["short_code", "Short code"],
  ["api", "API"],
  ["import", "Import"],
];

// Region codes that Intl knows but ISO 3166-1 alpha-2 does not assign to a country.
const NOT_COUNTRIES = new Set([
  "AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ",
]);
const FALLBACK_COUNTRIES = [
  ["AR", "Argentina"], ["BR", "Brazil"], ["CA", "Canada"], ["CL", "Chile"], ["CO", "Colombia"],
  ["DE", "Germany"], ["ES", "Spain"], ["FR", "France"], ["GB", "United Kingdom"], ["IT", "Italy"],
  ["MX", "Mexico"], ["PE", "Peru"], ["PT", "Portugal"], ["US", "United States"], ["UY", "Uruguay"],
];

/** [code, name] of every country the browser can name, sorted by name. */
export const COUNTRIES = (() => {
  try {
    const names = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
    const found = [];
    for (let a = 65; a <= 90; a += 1) {
      for (let b = 65; b <= 90; b += 1) {
        const code = String.fromCharCode(a, b);
        const name = NOT_COUNTRIES.has(code) ? undefined : names.of(code);
        if (name && name !== code) found.push([code, name]);
      }
    }
    if (found.length > 100) return found.sort((x, y) => x[1].localeCompare(y[1]));
  } catch {
    // An old browser: the short list below.
  }
  return FALLBACK_COUNTRIES;
})();

/**
 * Profile characteristics: a trait path, the kind of its value and, for some, known values
 * (`options`: the only valid values; `suggest`: common ones, others allowed).
 */
export const TRAITS = {
  gender: { label: "Gender", path: "gender", kind: "text", suggest: ["female", "male"] },
  age: { label: "Age", path: "age", kind: "number" },
  birthdate: { label: "Birthdate", path: "birthdate", kind: "date" },
  city: { label: "Location: city", path: "location.city", kind: "text" },
  region: { label: "Location: region", path: "location.region", kind: "text" },
  country: { label: "Location: country", path: "location.country", kind: "enum", options: COUNTRIES },
  near: { label: "Location: near a place", path: "location", kind: "place" },
  device_type: { label: "Device type", path: "device.type", kind: "enum", options: DEVICE_TYPES },
  device_brand: {
    label: "Device brand",
    path: "device.brand",
    kind: "text",
    suggest: ["Apple", "Samsung", "Xiaomi", "Motorola", "Google", "Huawei"],
  },
  device_os: {
    label: "Device OS",
    path: "device.os",
    kind: "text",
    suggest: ["iOS", "Android", "Windows", "macOS", "Linux"],
  },
  mobile_operator: { label: "Mobile operator", path: "mobile_operator", kind: "text" },
  subscription_source: {
    label: "Subscription source",
    path: "subscription_source",
    kind: "enum",
    options: SUBSCRIPTION_SOURCES,
  },
  custom: { label: "Custom property", path: null, kind: "any" },
};

/** Customer activity: event types (SPEC §3.2) and their usual properties. */
export const ACTIVITIES = {
  "link.clicked": {
    label: "Clicked a short link",
    properties: ["link_id", "url", "campaign_id"],
    numbers: [],
  },
  "page.viewed": { label: "Visited a page", properties: ["url", "path"], numbers: [] },
  "product.viewed": {
    label: "Viewed a product",
    properties: ["product_id", "name", "category", "price"],
    numbers: ["price"],
  },
  "cart.added": {
    label: "Added items to the cart",
    properties: ["product_id", "quantity", "price"],
    numbers: ["quantity", "price"],
  },
  "order.purchased": {
    label: "Purchased (products, amount spent)",
    properties: [
      "order_id",
      "amount",
      "currency",
      "products.product_id",
      "products.quantity",
      "products.price",
    ],
    numbers: ["amount", "products.quantity", "products.price"],
  },
  "app.installed": { label: "Installed an app", properties: ["app", "platform"], numbers: [] },
  "form.completed": { label: "Completed a form", properties: ["form_id"], numbers: [] },
  custom: { label: "Custom action", properties: [], numbers: [] },
};

export const NUMERIC_PROPERTIES = new Set(["price", "quantity", "amount", "products.quantity", "products.price"]);

/** Measures of an event condition (SPEC §4.1). */
export const MEASURES = [
  ["none", "at least once"],
  ["count", "a number of times"],
  ["sum", "with a total (sum) of"],
  ["avg", "with an average of"],
  ["min", "with a smallest value of"],
  ["max", "with a largest value of"],
];

export const WINDOWS = [
  ["any", "at any time (all history kept)"],
  ["last", "in the last"],
  ["range", "between dates"],
];

export const DURATION_UNITS = [
  ["d", "days"],
  ["w", "weeks"],
  ["h", "hours"],
  ["m", "minutes"],
  ["s", "seconds"],
];

/** Units of an anniversary period (1 to 366 days, SPEC §4.4). */
export const DAY_UNITS = [
  ["d", "days"],
  ["w", "weeks"],
];

export const VALUE_TYPES = [
  ["text", "text"],
  ["number", "number"],
  ["bool", "true / false"],
];
