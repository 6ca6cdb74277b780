//! Names serin writes on objects it manages (DESIGN.md, "hold, don't clone").

/// Object label on an adopted workload; its value is the Canary's name.
pub const CANARY_LABEL: &str = "serin.dev/canary";
/// Annotation on an adopted workload: the template hash that is allowed to roll out.
pub const STABLE_HASH_ANNOTATION: &str = "serin.dev/stable-hash";
/// Annotation on a Canary asking for a new analysis of the current revision after a failure.
pub const RETRY_ANNOTATION: &str = "serin.dev/retry";
/// Annotation on a Canary asking to skip the remaining analysis and promote now. Its value is a
/// fresh token (`serin promote` writes `<time>@<revision>`), acted on once (`status.lastPromote`).
pub const PROMOTE_ANNOTATION: &str = "serin.dev/promote";
/// Annotation on a Canary asking to roll back now; a token like `serin.dev/promote`
/// (`status.lastAbort`).
pub const ABORT_ANNOTATION: &str = "serin.dev/abort";
/// Annotation on a Canary holding (`halted`) or opening (`approved@<revision>`) its manual gates.
pub const GATE_ANNOTATION: &str = "serin.dev/gate";
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
