//! Names serin writes on objects it manages (DESIGN.md, "hold, don't clone").

/// Object label on an adopted workload; its value is the Canary's name.
pub const CANARY_LABEL: &str = "serin.dev/canary";
/// Annotation on an adopted workload: the template hash that is allowed to roll out.
pub const STABLE_HASH_ANNOTATION: &str = "serin.dev/stable-hash";
/// Annotation on a Canary asking for a new analysis of the current revision after a failure.
pub const RETRY_ANNOTATION: &str = "serin.dev/retry";
/// Suffix of the canary workload and Service (`web-canary`).
pub const CANARY_SUFFIX: &str = "-canary";
/// Suffix of the primary Service (`web-primary`); the stable workload keeps its own name.
pub const PRIMARY_SUFFIX: &str = "-primary";
/// Annotation on a held DaemonSet or StatefulSet: the user's own `spec.updateStrategy` (JSON,
/// verbatim; `null` when it had none), written back when the hold comes off.
pub const UPDATE_STRATEGY_ANNOTATION: &str = "serin.dev/update-strategy";
/// Node selector key of a canary DaemonSet scaled to zero: no node carries it, so no pod runs
/// (DaemonSets have no replica count; Flagger scales them the same way).
pub const SCALE_TO_ZERO_NODE_SELECTOR: &str = "serin.dev/scale-to-zero";
