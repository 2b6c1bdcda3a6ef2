/**
 * The Standard Schema v1 interface (https://standardschema.dev), written
 * from the published spec so Kysera needs no dependency for it. zod 4,
 * valibot and arktype schemas all implement it.
 *
 * @typeParam Input What the schema accepts.
 * @typeParam Output What a successful validation returns.
 *
 * @example Validating through any Standard Schema
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StandardSchemaV1 } from "@kysera/kysera/repository";
 * import { z } from "zod";
 *
 * const schema: StandardSchemaV1<unknown, { email: string }> = z.object({ email: z.email() });
 * const result = await schema["~standard"].validate({ email: "nope" });
 * assert.ok(result.issues !== undefined);
 * ```
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": StandardSchemaProps<Input, Output>;
}

/** The properties of a {@linkcode StandardSchemaV1}. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version of the spec: `1`. */
  readonly version: 1;
  /** The library that made the schema (`"zod"`, `"valibot"`, ...). */
  readonly vendor: string;
  /** Validates a value. */
  readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
  /** The inferred types, for type inference only. */
  readonly types?: StandardTypes<Input, Output> | undefined;
}

/** The result of {@linkcode StandardSchemaProps.validate}. */
export type StandardResult<Output> = StandardSuccessResult<Output> | StandardFailureResult;

/** A successful validation. */
export interface StandardSuccessResult<Output> {
  /** The validated (possibly transformed) value. */
  readonly value: Output;
  /** Absent on success. */
  readonly issues?: undefined;
}

/** A failed validation. */
export interface StandardFailureResult {
  /** What is wrong. */
  readonly issues: readonly StandardIssue[];
}

/** One problem found by a schema. */
export interface StandardIssue {
  /** The message, from the schema library. */
  readonly message: string;
  /** Where in the value the problem is. */
  readonly path?: readonly (PropertyKey | StandardPathSegment)[] | undefined;
}

/** A segment of {@linkcode StandardIssue.path}. */
export interface StandardPathSegment {
  /** The key of the segment. */
  readonly key: PropertyKey;
}

/** The input and output types of a schema. */
export interface StandardTypes<Input = unknown, Output = Input> {
  /** What the schema accepts. */
  readonly input: Input;
  /** What it returns. */
  readonly output: Output;
}

/** The input type of a Standard Schema. */
export type StandardInput<S extends StandardSchemaV1> = NonNullable<S["~standard"]["types"]>["input"];
/** The output type of a Standard Schema. */
export type StandardOutput<S extends StandardSchemaV1> = NonNullable<S["~standard"]["types"]>["output"];
