#!/usr/bin/env bash
# wigeon: checks the layering (docs: STYLE.md "Layout"). Usage: check_layers.sh SOURCE_DIR [BUILD_DIR]
#  (a) no file of src/LAYER includes a header of a layer it may not use;
#  (b) no two object files call each other (A uses a symbol B defines and B one A defines), and no
#      object uses a symbol defined by a layer it may not use (needs BUILD_DIR, built);
#  (c) no function in src/ is over 150 lines (a brace-depth scanner over comment-stripped code).
# Prints every violation, one a line, and exits 1 on any.
set -u
src_dir=${1:?usage: check_layers.sh SOURCE_DIR [BUILD_DIR]}
build_dir=${2:-}
max_lines=150
fail=0

# The dependency graph (as in CMakeLists.txt): the layers each layer may use, itself included.
declare -A allowed=(
  [common]="common"
  [arrow]="common arrow"
  [flight]="common arrow flight proto"
  [rpc]="common arrow flight proto rpc"
  [engine]="common arrow engine"
  [server]="common arrow flight proto rpc engine server"
  [client]="common arrow flight proto rpc client wigeon"
  [cli]="common arrow flight proto rpc engine server client wigeon cli"
)
# Foreign headers and the layer of ours they belong with.
foreign_layer() {
  case $1 in
    grpc/*) echo flight ;; # Flight's codec works on grpc byte buffers
    protobuf-c/*) echo proto ;;
    duckdb.h) echo engine ;;
    *) echo "" ;;
  esac
}
may_use() { # layer other -> 0 if layer may use other
  local a
  for a in ${allowed[$1]}; do [[ $a == "$2" ]] && return 0; done
  return 1
}

# (a) includes
for dir in "$src_dir"/src/*/; do
  layer=$(basename "$dir")
  [[ -n ${allowed[$layer]:-} ]] || { echo "layers: src/$layer is not a known layer"; fail=1; continue; }
  for f in "$dir"*.[ch]; do
    [[ -e $f ]] || continue
    while IFS=: read -r line inc; do
      hdr=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*)[>"].*/\1/' <<<"$inc")
      if [[ $inc == *'"'* ]]; then
        if [[ $hdr == */* ]]; then other=${hdr%%/*}; elif [[ $hdr == wigeon.h ]]; then other=wigeon; else continue; fi
      else
        other=$(foreign_layer "$hdr")
        [[ -n $other ]] || continue
      fi
      [[ -n ${allowed[$other]:-} || $other == proto || $other == wigeon ]] || continue
      may_use "$layer" "$other" ||
        { echo "include: src/$layer/$(basename "$f"):$line includes $hdr (layer $layer may use: ${allowed[$layer]})"; fail=1; }
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include' "$f")
  done
done

# (b) symbols of the built objects, library by library
if [[ -n $build_dir ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  : >"$tmp/defs"
  : >"$tmp/uses"
  found=0
  for layer in common arrow flight rpc engine server client; do
    objdir="$build_dir/CMakeFiles/wg_$layer.dir"
    [[ -d $objdir ]] || { echo "objects: no $objdir (build first)"; fail=1; continue; }
    while IFS= read -r o; do
      # named by its source's folder, not the library's: a build folder reused across a change of
      # the CMake layout may hold stale objects (skipped when their source is gone)
      src=${o#"$objdir"/src/}
      src=${src%.o}
      [[ -f $src_dir/src/$src ]] || continue
      found=1
      name="${src%.c}"
      nm --defined-only -g "$o" | awk -v n="$name" 'NF >= 3 && $2 ~ /[TDBRC]/ { print $3, n }' >>"$tmp/defs"
      nm -u "$o" | awk -v n="$name" '{ print $NF, n }' >>"$tmp/uses"
    done < <(find "$objdir" -name '*.o' | sort)
  done
  if [[ $found == 1 ]]; then
    sort -u "$tmp/defs" >"$tmp/defs.s"
    sort -u "$tmp/uses" >"$tmp/uses.s"
    # user definer: a reference resolved inside our objects
    join "$tmp/uses.s" "$tmp/defs.s" | awk '$2 != $3 { print $2, $3, $1 }' | sort -u >"$tmp/edges"
    # a layer using a symbol of a layer it may not use
    while read -r user definer sym; do
      may_use "${user%%/*}" "${definer%%/*}" ||
        { echo "symbol: $user.o uses $sym from $definer.o (layer ${user%%/*} may use: ${allowed[${user%%/*}]})"; fail=1; }
    done <"$tmp/edges"
    # two objects calling each other
    awk '{ e[$1 " " $2] = e[$1 " " $2] (e[$1 " " $2] ? "," : "") $3 }
         END { for (k in e) { split(k, p, " "); r = p[2] " " p[1];
                 if ((r in e) && p[1] < p[2])
                   printf "cycle: %s.o uses %s of %s.o, which uses %s of it\n", p[1], e[k], p[2], e[r] } }' \
      "$tmp/edges" | sort >"$tmp/cycles"
    if [[ -s $tmp/cycles ]]; then cat "$tmp/cycles"; fail=1; fi
  fi
fi

# (c) function length
for f in "$src_dir"/src/*/*.[ch]; do
  [[ -e $f ]] || continue
  awk -v file="${f#"$src_dir"/}" -v max=$max_lines '
    function strip(s,   out, c, i, n) {
      # removes comments, string and character literals (keeps braces of code only)
      out = ""; n = length(s)
      for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (incomment) { if (c == "*" && substr(s, i + 1, 1) == "/") { incomment = 0; i++ } continue }
        if (c == "/" && substr(s, i + 1, 1) == "*") { incomment = 1; i++; continue }
        if (c == "/" && substr(s, i + 1, 1) == "/") break
        if (c == "\"" || c == "\047") {
          q = c
          for (i++; i <= n; i++) { c = substr(s, i, 1); if (c == "\\") { i++; continue } if (c == q) break }
          continue
        }
        out = out c
      }
      return out
    }
    {
      if (continued) { continued = ($0 ~ /\\$/); next }
      if (!incomment && $0 ~ /^[[:space:]]*#/) { continued = ($0 ~ /\\$/); next }
      code = strip($0)
      if (depth == 0 && hdr == 0 && code ~ /[^[:space:]]/) { hdr = NR; text = "" }
      for (i = 1; i <= length(code); i++) {
        c = substr(code, i, 1)
        if (c == "{") {
          if (depth == 0) { isfn = (text ~ /\)[[:space:]]*$/ && text !~ /=/); start = hdr; name = text }
          depth++
        } else if (c == "}") {
          depth--
          if (depth == 0) {
            if (isfn && NR - start + 1 > max) {
              sub(/\(.*/, "", name); n = split(name, w, /[[:space:]*]+/)
              printf "length: %s:%d: %s is %d lines (max %d)\n", file, start, w[n], NR - start + 1, max
              bad = 1
            }
            hdr = 0; isfn = 0
          }
        } else if (depth == 0) {
          if (c == ";") { hdr = 0; text = "" } else text = text c
        }
      }
      if (depth == 0) text = text " "
    }
    END { exit bad }' "$f" || fail=1
done

exit $fail
