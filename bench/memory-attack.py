#!/usr/bin/env python3
"""Issue 15's memory attack on a sizer binary: four 9000x7000 photographs of noise at quality 85 (47.6 MB
each, incompressible as film grain or foliage are) in a local directory store, the default configuration.

usage:  memory-attack.py SIZER_BIN WORKDIR MODE
        MODE 48     48 concurrent GET /w/{3600+10i}/images/big{i%4}.jpg: statuses, their times, the peak RSS
                    (VmHWM), the refusals by reason; then the same server, the same kind of request (fresh
                    widths), one after another for as long: the work shedding must not waste
        MODE 6      6 concurrent GET /w/{3000+i}/images/big{i%4}.jpg: all should be 200
        MODE 6term  the same six, SIGTERM 0.3 s in: all 200, their write-backs landed, exit status 0
Prints one JSON object. The originals are made once under WORKDIR/images (Pillow; bench/ssim.py's venv
when Pillow is not importable here).
"""
import os, sys, time, signal, subprocess, threading, urllib.request, urllib.error, socket, shutil, json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssim  # noqa: E402,F401  (re-runs this script in its venv when Pillow, numpy or skimage are missing)
from PIL import Image  # noqa: E402

BIN, WORK, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(f'{WORK}/images', exist_ok=True)
for i in range(4):
    path = f'{WORK}/images/big{i}.jpg'
    if not os.path.exists(path):
        Image.frombytes('RGB', (9000, 7000), os.urandom(9000 * 7000 * 3)).save(path, quality=85)
root = f'{WORK}/root'
shutil.rmtree(root, ignore_errors=True)
os.makedirs(root + '/images')
for i in range(4):
    os.link(f'{WORK}/images/big{i}.jpg', f'{root}/images/big{i}.jpg')
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
env = dict(os.environ, RUST_LOG='error')
p = subprocess.Popen([BIN, 'serve', '--root', root, '--listen', f'127.0.0.1:{port}'], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f'http://127.0.0.1:{port}'
for _ in range(200):
    try:
        urllib.request.urlopen(base + '/healthz', timeout=1); break
    except Exception:
        time.sleep(0.05)

def hwm():
    for line in open(f'/proc/{p.pid}/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) // 1024

def get(path, out, i):
    t = time.time()
    try:
        r = urllib.request.urlopen(base + path, timeout=120); r.read(); code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:
        code = type(e).__name__
    out[i] = (code, time.time() - t)

def burst(paths, term_after=None):
    out = [None] * len(paths)
    ts = [threading.Thread(target=get, args=(q, out, i)) for i, q in enumerate(paths)]
    t0 = time.time()
    for t in ts: t.start()
    if term_after is not None:
        time.sleep(term_after); p.send_signal(signal.SIGTERM)
    for t in ts: t.join()
    return out, time.time() - t0

def metrics():
    text = urllib.request.urlopen(base + '/metrics').read().decode()
    return {l.split()[0]: l.split()[1] for l in text.splitlines() if l.startswith('sizer_memory') and ' ' in l}

if MODE == '48':
    paths = [f'/w/{3600 + 10*i}/images/big{i % 4}.jpg' for i in range(48)]
    out, total = burst(paths)
    codes = [c for c, _ in out]
    peak = hwm()
    m = metrics()
    served = codes.count(200)
    late = [round(d, 1) for c, d in out if d > 15.5]
    t_ok = sorted(round(d, 1) for c, d in out if c == 200)
    t_503 = sorted(round(d, 2) for c, d in out if c == 503)
    # The same server, one request after another, for as long (fresh widths).
    t0 = time.time(); alone = 0; i = 0
    while time.time() - t0 < total:
        o = [None]; get(f'/w/{3605 + 10*i}/images/big{i % 4}.jpg', o, 0)
        if o[0][0] == 200 and time.time() - t0 <= total: alone += 1
        i += 1
    print(json.dumps({'served': served, 'of': 48, 'statuses': {str(c): codes.count(c) for c in set(codes)},
          'total_s': round(total, 1), 'peak_rss_mib': peak, 'answered_after_15.5s': late,
          'ok_times': t_ok, '503_times_min_max': [t_503[0], t_503[-1]] if t_503 else [],
          'sequential_served_in_same_time': alone,
          'refusals': {k: v for k, v in m.items() if 'refusals' in k}, 'wait_count': m.get('sizer_memory_wait_seconds_count')}))
else:
    w = [3000 + i for i in range(6)]
    paths = [f'/w/{w[i]}/images/big{i % 4}.jpg' for i in range(6)]
    out, total = burst(paths, 0.3 if MODE == '6term' else None)
    res = {'statuses': [c for c, _ in out], 'times': [round(d, 1) for _, d in out], 'total_s': round(total, 1)}
    if MODE == '6term':
        rc = p.wait(timeout=60)
        res['exit'] = rc
        res['written_back'] = sum(os.path.exists(f'{root}/copy/images/big{i % 4}.jpg/w{w[i]}_q80') for i in range(6))
    else:
        res['peak_rss_mib'] = hwm()
    print(json.dumps(res))
if p.poll() is None:
    p.kill()
