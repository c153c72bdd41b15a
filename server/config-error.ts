// The one error type of configuration problems, from flags and from the config file alike.

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "CC_ERR_CONFIG";
  constructor(
    /** The flag (or config key) at fault. */
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
  }
}
