// Types for parse-prometheus-text-format (it ships none): prom2json's shape.
declare module "parse-prometheus-text-format" {
  export interface PromSample {
    readonly labels?: Readonly<Record<string, string>>;
    /** Counters, gauges, untyped. */
    readonly value?: string;
    /** Histograms: cumulative count by upper bound ("+Inf" is the total). */
    readonly buckets?: Readonly<Record<string, string>>;
    readonly count?: string;
    readonly sum?: string;
  }
  export interface PromFamily {
    readonly name: string;
    readonly help: string;
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    readonly metrics: readonly PromSample[];
  }
  /** Throws InvalidLineError on a line that is not valid text format. */
  export default function parsePrometheusTextFormat(text: string): PromFamily[];
}
