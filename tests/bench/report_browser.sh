#!/bin/bash
# tests/bench/report_browser.sh KILN OUT_DIR - the HTML report renders in a
# real browser. A real tuning database: gemv_int4 on two shapes and gemm_int4
# on one with a key too long for a label, briefly, on every local device
# (cpu, opencl, vulkan where present); `kiln report` on it; then one page
# load of index.html in headless Chromium that dumps the DOM and writes a
# screenshot. Checks: every <figure> of the page laid out its SVG with a size
# and drawn elements (the page's own load check, read from the dumped DOM),
# the tuned/default figure has a panel per device and tooltips with the
# default and the tuned config, the cross-device table has a column per
# device, long shape keys got a legend, and the screenshot is a PNG of the
# window's size. OUT_DIR (under the build folder) keeps the database, the
# report and report.png as CI artifacts.
#
# Chromium comes from scripts/install-deps.sh; without it the test skips
# (exit 77) unless $KILN_REQUIRE_BACKENDS names "chromium".
set -uo pipefail
kiln=$1 out=$2
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
    if [[ ,${KILN_REQUIRE_BACKENDS:-}, == *,chromium,* ]]; then
        echo "FAIL: chromium is required (KILN_REQUIRE_BACKENDS) and not installed" >&2
        exit 1
    fi
    echo "SKIP: chromium not installed (scripts/install-deps.sh installs it)" >&2
    exit 77
fi
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot not installed" >&2; exit 77; }

rm -rf "$out"
mkdir -p "$out"
db="$out/tune.db"
export KILN_CPU_THREADS=1
mapfile -t devs < <("$kiln" devices --available 2>/dev/null | grep -E '^(cpu|opencl|vulkan):' | sed 's/:.*//')
[[ ${#devs[@]} -ge 1 ]] || { echo "FAIL: no device available" >&2; exit 1; }
for d in "${devs[@]}"; do
    "$kiln" tune --device "$d" --kernel gemv_int4 --shape m=192,k=576,quant=q4_1,group=32 \
        --shape m=576,k=576,quant=q4_1,group=32 --budget 4 --db "$db" >"$out/tune-$d.log" 2>&1 ||
        { cat "$out/tune-$d.log" >&2; fail "tune gemv_int4 on $d exited $?"; }
    "$kiln" tune --device "$d" --kernel gemm_int4 --shape m=192,k=576,n=16,quant=q4_1,group=32,act=q8 --budget 2 \
        --db "$db" >>"$out/tune-$d.log" 2>&1 || { cat "$out/tune-$d.log" >&2; fail "tune gemm_int4 on $d exited $?"; }
done

"$kiln" report --db "$db" -o "$out/report" >"$out/report.log" 2>&1 || { cat "$out/report.log" >&2; fail "report exited $?"; }
cat "$out/report.log"
html="$out/report/index.html"
[[ -f $html ]] || { echo "FAIL: no index.html" >&2; exit 1; }
n_fig=$(grep -c '^<figure id=' "$html")
[[ $n_fig -ge 4 ]] || fail "index.html has $n_fig figures (want speedup, devices, convergence, landscape)"

# one page load: the DOM after the load event, and a screenshot
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000 \
    --window-size=1280,1800 --screenshot="$out/report.png" --dump-dom "file://$(realpath "$html")" \
    >"$out/dom.html" 2>"$out/chromium.log" || { tail -20 "$out/chromium.log" >&2; fail "chromium exited $?"; }
body=$(grep -o '<body[^>]*>' "$out/dom.html" | head -1)
echo "page: $body"
[[ $body == *"data-figures=\"$n_fig\""* ]] || fail "the page's load check did not run over $n_fig figures: $body"
[[ $body == *"data-figures-loaded=\"$n_fig\""* ]] || fail "not every figure rendered: $body"
loaded=$(grep -o '<figure id="[a-z]*" data-loaded="yes"' "$out/dom.html" | sed 's/.*id="\([a-z]*\)".*/\1/' | tr '\n' ' ')
echo "figures rendered: $loaded"

# the tuned/default figure: a panel per device, tooltips with both configs
speedup=$(sed -n '/<figure id="speedup"/,/<\/figure>/p' "$out/dom.html")
for d in "${devs[@]}"; do
    grep -q ">$d: " <<<"$speedup" || fail "no panel for $d in the speedup figure"
done
grep -Eq '<title>gemv_int4 m576\.k576\.q4_1\.g32 on [a-z]+: ' <<<"$speedup" || fail "no tooltip naming a winner"
grep -Eq '^tuned [0-9.]+ (us|ms): wg=[0-9]+' <<<"$speedup" || fail "no tuned config in a tooltip"
grep -Eq '^default [0-9.]+ (us|ms): wg=[0-9]+' <<<"$speedup" || fail "no default config in a tooltip"
grep -q 'showHypertext' "$out/dom.html" && fail "gnuplot's hypertext calls left in the page (they need gnuplot_svg.js)"
# the long key is shortened with a legend line holding the whole key
grep -q '~1 gemm_int4 m192.k576.n16.q4_1.g32.xq8' "$out/report/speedup.gp" ||
    fail "no legend line for the long gemm_int4 key"
# the cross-device view: a column per device, a % of bandwidth per cell
head_row=$(sed -n '/^## Across devices/,/^## /p' "$out/report/summary.md" | grep -m1 '^| kernel | shape |' || true)
for d in "${devs[@]}"; do
    [[ $head_row == *"| $d: "* ]] || fail "no column for $d in the cross-device table: $head_row"
done
grep -Eq '^\| gemv_int4 \| m576\.k576\.q4_1\.g32 \|.*[0-9.]+ (us|ms), [0-9.]+% of read' "$out/report/summary.md" ||
    fail "no time and % of read bandwidth for gemv_int4 in the cross-device table"

# the screenshot: a PNG of the window's size (IHDR width and height)
png="$out/report.png"
if [[ -f $png ]]; then
    sig=$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')
    wh=$(od -An -tu1 -j16 -N8 "$png" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')
    size=$(stat -c %s "$png")
    [[ $sig == 89504e470d0a1a0a ]] || fail "report.png has no PNG signature ($sig)"
    [[ $wh == 1280x1800 ]] || fail "report.png is $wh, want 1280x1800"
    [[ $size -gt 30000 ]] || fail "report.png is only $size bytes (a blank page?)"
    echo "screenshot: $png ($wh, $size bytes)"
else
    fail "no screenshot written"
fi
[[ $fails -eq 0 ]] || { echo "$fails check(s) failed" >&2; exit 1; }
echo "report_browser: ok (${#devs[@]} device(s), $n_fig figures rendered in Chromium)"
