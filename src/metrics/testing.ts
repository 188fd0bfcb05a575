/**
 * Test helper: a strict reader of Prometheus' text exposition format (0.0.4), the one `GET /metrics`
 * answers. prom-client writes it but cannot read it; this checks every line's syntax (a line that is
 * no comment, TYPE, HELP or sample throws, naming it) and that each sample belongs to a declared family.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromText {
  samples: PromSample[];
  /** Family name → its TYPE. */
  types: Map<string, string>;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// Go's ParseFloat, which Prometheus reads values with, takes NaN and Inf in any case ("Nan" is prom-client's).
const VALUE = "[+-]?(?:[Ii][Nn][Ff]|[Nn][Aa][Nn]|[0-9]*\\.?[0-9]+(?:[eE][+-]?[0-9]+)?)";
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?[0-9]+)?$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const HELP_RE = new RegExp(`^# HELP (${NAME})(?: .*)?$`);
const LABEL_PAIR_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

const SUFFIXES: Record<string, readonly string[]> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count", ""],
  counter: ["", "_total"],
};

function unescape(v: string): string {
  return v.replace(/\\(["\\n])/g, (_m, c: string) => (c === "n" ? "\n" : c));
}

function number(text: string): number {
  if (/^\+?inf$/i.test(text)) return Infinity;
  if (/^-inf$/i.test(text)) return -Infinity;
  if (/nan/i.test(text)) return NaN;
  return Number(text);
}

/** Parses the text; throws on the first line that is not valid exposition format. */
export function parsePrometheusText(text: string): PromText {
  const types = new Map<string, string>();
  const samples: PromSample[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === "") return;
    const type = TYPE_RE.exec(line);
    if (type) {
      if (types.has(type[1]!)) throw new Error(`${where}: a second TYPE for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      return;
    }
    if (HELP_RE.test(line)) return;
    if (line.startsWith("#")) {
      if (/^# (TYPE|HELP)\b/.test(line)) throw new Error(`${where}: a malformed ${line.slice(2, 6)} line`);
      return;
    }
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`${where}: not a sample line`);
    const name = m[1]!;
    const family = [...types.entries()].find(([f, t]) => (SUFFIXES[t] ?? [""]).some((s) => name === f + s));
    if (!family) throw new Error(`${where}: sample of no declared family`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(LABEL_PAIR_RE)) {
      if (k! in labels) throw new Error(`${where}: label ${k} twice`);
      labels[k!] = unescape(v!);
    }
    samples.push({ name, labels, value: number(m[3]!) });
  });
  return { samples, types };
}

/** The value of the one sample `name` whose labels are exactly `labels`; undefined when none. */
export function sample(text: PromText, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).sort();
  const found = text.samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(want));
  if (found.length > 1) throw new Error(`${found.length} samples ${name}${JSON.stringify(labels)}`);
  return found[0]?.value;
}
