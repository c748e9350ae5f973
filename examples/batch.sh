#!/usr/bin/env bash
# Colour every video of a folder with tpn, one after the other.
#
#   examples/batch.sh VIDEOS_DIR KEYS_ROOT OUT_DIR [extra tpn colorize options...]
#
# For each VIDEOS_DIR/NAME.{mp4,mkv,mov} the key-frames are KEYS_ROOT/NAME/ and the
# output is OUT_DIR/NAME_color.EXT. Outputs that already exist are skipped, so an
# interrupted batch can simply be run again (tpn writes each output under a temporary
# name, so an existing output is always complete). A failing video does not stop the
# batch; the failed ones are listed at the end and the exit status is 1 if any failed.
#
# Example:
#   examples/batch.sh reels/ reels_keys/ reels_color/ --mode blend --batch-size 8
# Set TPN to the command to run (default: tpn), e.g. TPN="python -m tpn_cli".
set -u

if [ $# -lt 3 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
videos=$1 keys=$2 out=$3
shift 3
tpn=${TPN:-tpn}
mkdir -p "$out" || exit 6

failed=() done_n=0 skipped=0
shopt -s nullglob
for video in "$videos"/*.mp4 "$videos"/*.mkv "$videos"/*.mov; do
    file=$(basename "$video")
    name=${file%.*}
    target="$out/${name}_color.${file##*.}"
    if [ -e "$target" ]; then
        echo "skip  $file (done: $target)"
        skipped=$((skipped + 1))
        continue
    fi
    echo "start $file"
    # $tpn is deliberately unquoted so that TPN may hold a command with arguments
    if $tpn colorize "$video" --keyframes "$keys/$name" -o "$target" "$@"; then
        done_n=$((done_n + 1))
    else
        status=$?
        echo "FAIL  $file (exit $status)" >&2
        failed+=("$file")
        # Ctrl-C stops the whole batch, not just this video
        [ "$status" -eq 130 ] && break
    fi
done

echo "done: $done_n, skipped: $skipped, failed: ${#failed[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
