//! Rendering of MetricTemplate queries with Flagger's variables.
//!
//! Flagger renders queries with Go's `text/template` and `missingkey=error`, and its variables are
//! functions: `{{ name }}`, `{{ namespace }}`, `{{ target }}`, `{{ service }}`, `{{ ingress }}`,
//! `{{ route }}`, `{{ interval }}`, `{{ variables.KEY }}`. Real templates use nothing else, so
//! this renders exactly those actions (with `{{-`/`-}}` whitespace trimming) instead of pulling a
//! Go-template engine; anything else is an error that names the action, as Flagger's would be.
//!
//! serin adds `{{ primary }}`: in serin the stable pods belong to the target workload (`web`) and
//! the canary's to `web-canary`, so `{{ target }}` renders to the canary workload (what Flagger
//! users mean by it: pod-name regexes, `deployment=`, `destination_workload=`) and `{{ primary }}`
//! to the stable one. The Services keep Flagger's names (`web`, `web-primary`, `web-canary`), so
//! where `{{ target }}` is followed by `-canary` or `-primary` it names a Service and renders to
//! the target's own name, as in Flagger: `{{ target }}-canary` is `web-canary`, not
//! `web-canary-canary`. See docs/migrating-from-flagger.md for every rule.

use std::collections::BTreeMap;

/// The values a query can refer to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateVars {
    /// The Canary's name.
    pub name: String,
    pub namespace: String,
    /// The canary workload (`web-canary`).
    pub target: String,
    /// The stable workload (`web`).
    pub primary: String,
    /// The apex Service.
    pub service: String,
    pub ingress: String,
    pub route: String,
    /// The metric's interval in Go form (`1m`).
    pub interval: String,
    /// `templateVariables` of the Canary metric.
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template action at byte {0} is not closed: add \"}}}}\"")]
    Unclosed(usize),
    #[error(
        "unknown template variable {{{{ {0} }}}}: use name, namespace, target, primary, service, ingress, route, interval or variables.KEY"
    )]
    Unknown(String),
    #[error(
        "template variable {{{{ variables.{0} }}}} is not set: add {0} to the metric's templateVariables"
    )]
    MissingVariable(String),
}

impl TemplateVars {
    /// Vars for a Canary named `name` whose stable workload is `primary`.
    pub fn for_canary(
        spec: &crate::CanarySpec,
        name: &str,
        namespace: &str,
        interval: &str,
        variables: BTreeMap<String, String>,
    ) -> Self {
        let target = &spec.target_ref.name;
        Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            target: format!("{target}{}", crate::labels::CANARY_SUFFIX),
            primary: target.clone(),
            service: spec.service_name().to_string(),
            ingress: spec
                .ingress_ref
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_else(|| target.clone()),
            route: spec
                .route_ref
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_else(|| target.clone()),
            interval: interval.to_string(),
            variables,
        }
    }

    fn lookup(&self, action: &str) -> Result<&str, RenderError> {
        if let Some(key) = action.strip_prefix("variables.") {
            return self
                .variables
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| RenderError::MissingVariable(key.to_string()));
        }
        Ok(match action {
            "name" => &self.name,
            "namespace" => &self.namespace,
            "target" => &self.target,
            "primary" => &self.primary,
            "service" => &self.service,
            "ingress" => &self.ingress,
            "route" => &self.route,
            "interval" => &self.interval,
            other => return Err(RenderError::Unknown(other.to_string())),
        })
    }
}

/// Whether the text after `{{ target }}` makes it one of Flagger's Service names
/// (`{{ target }}-canary`, `{{ target }}-primary`): those Services exist under the same names in
/// serin, so `{{ target }}` there is the target's own name, as in Flagger.
fn names_a_service(after: &str) -> bool {
    after.starts_with("-canary") || after.starts_with("-primary")
}

/// Renders `query` with `vars`.
pub fn render(query: &str, vars: &TemplateVars) -> Result<String, RenderError> {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        let after = &rest[start + 2..];
        let close = after
            .find("}}")
            .ok_or(RenderError::Unclosed(offset + start))?;
        let mut action = &after[..close];
        if let Some(a) = action.strip_prefix('-') {
            action = a;
            literal = literal.trim_end();
        }
        let trim_after = action.ends_with('-');
        if trim_after {
            action = &action[..action.len() - 1];
        }
        out.push_str(literal);
        let action = action.trim();
        let consumed = start + 2 + close + 2;
        rest = &rest[consumed..];
        offset += consumed;
        if trim_after {
            let trimmed = rest.trim_start();
            offset += rest.len() - trimmed.len();
            rest = trimmed;
        }
        out.push_str(if action == "target" && names_a_service(rest) {
            &vars.primary
        } else {
            vars.lookup(action)?
        });
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            name: "web".into(),
            namespace: "prod".into(),
            target: "web-canary".into(),
            primary: "web".into(),
            service: "web".into(),
            ingress: "web".into(),
            route: "web".into(),
            interval: "1m".into(),
            variables: [("code".to_string(), "5..".to_string())].into(),
        }
    }

    #[test]
    fn renders_flagger_variables() {
        let q = r#"rate(x{ns="{{ namespace }}",pod=~"{{target}}-.*",s!~"{{ variables.code }}"}[{{ interval }}])"#;
        assert_eq!(
            render(q, &vars()).unwrap(),
            r#"rate(x{ns="prod",pod=~"web-canary-.*",s!~"5.."}[1m])"#
        );
        assert_eq!(render("{{ primary }}", &vars()).unwrap(), "web");
    }

    #[test]
    fn target_before_a_service_suffix_is_flaggers_target_name() {
        let traefik =
            r#"service="{{ namespace }}-{{ target }}-canary-{{ variables.code }}@kubernetescrd""#;
        assert_eq!(
            render(traefik, &vars()).unwrap(),
            r#"service="prod-web-canary-5..@kubernetescrd""#
        );
        assert_eq!(
            render("{{ target }}-primary", &vars()).unwrap(),
            "web-primary"
        );
        assert_eq!(
            render("{{ target -}}  -canary", &vars()).unwrap(),
            "web-canary"
        );
        assert_eq!(
            render("{{ target }}-[0-9a-z]+", &vars()).unwrap(),
            "web-canary-[0-9a-z]+"
        );
        assert_eq!(
            render("{{ target }}-canaryx", &vars()).unwrap(),
            "web-canaryx"
        );
    }

    #[test]
    fn trims_like_go() {
        assert_eq!(render("a  {{- name -}}  b", &vars()).unwrap(), "awebb");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            render("{{ nope }}", &vars()),
            Err(RenderError::Unknown("nope".into()))
        );
        assert_eq!(
            render("{{ variables.missing }}", &vars()),
            Err(RenderError::MissingVariable("missing".into()))
        );
        assert!(matches!(
            render("x {{ name", &vars()),
            Err(RenderError::Unclosed(2))
        ));
    }
}
