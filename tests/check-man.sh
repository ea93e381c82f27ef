#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check the man pages in man/ against the public API:
#  - every function declared with VCPU_API in include/vcpu/*.h is documented:
#    (a) some page names it in its NAME section or in a .B/.BI synopsis line,
#    (b) man/<name>.3 exists: the page itself (listing it in NAME) or a
#        ".so man3/<page>.3" alias whose target exists and lists it in NAME;
#  - every page starts with the SPDX line and is listed in man/meson.build
#    (install_man() there is what installs it);
#  - every full page formats without warnings (groff -man -ww, else
#    man --warnings, else the lint is skipped with a message).
#
# usage: check-man.sh SOURCE_ROOT
set -euo pipefail
root=${1:?usage: check-man.sh SOURCE_ROOT}
hdrdir=$root/include/vcpu
mandir=$root/man
fail=0

problem() {
	echo "FAIL: $*"
	fail=1
}

# --- The public API -----------------------------------------------------------
# Join backslash continuations, drop preprocessor lines (the #define of
# VCPU_API itself), put everything on one line, strip comments, and start a
# new line at each VCPU_API.  A declaration is "VCPU_API <type> name(...": the
# name is the identifier right before the first '(' (no ';' before it).
declared=$(
	for h in "$hdrdir"/*.h; do
		sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$h" | grep -v '^[[:space:]]*#' || true
	done | tr '\n' ' ' |
		sed -E -e 's#/\*([^*]|\*+[^*/])*\*+/# #g' -e 's/\<VCPU_API\>/\n@VCPU_API@/g' |
		sed -n -e 's/^@VCPU_API@\([^(;]*\)(.*/\1/' -e T \
			-e 's/^.*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*$/\1/p' |
		sort -u
)
if [ -z "$declared" ]; then
	echo "FAIL: found no VCPU_API declarations in $hdrdir"
	exit 1
fi
ndeclared=$(wc -l <<<"$declared")
echo "public headers declare $ndeclared VCPU_API functions"

if [ ! -d "$mandir" ]; then
	echo "FAIL: no man/ directory in $root"
	exit 1
fi
shopt -s nullglob
pages=("$mandir"/*.3)
shopt -u nullglob
if [ ${#pages[@]} -eq 0 ]; then
	echo "FAIL: no section 3 pages in $mandir"
	exit 1
fi

# --- Read every page once ------------------------------------------------------
# One awk pass prints "PAGE<TAB>KIND<TAB>VALUE" lines:
#   first  the page's first line
#   th     the page has a .TH line
#   so     the target of a ".so man3/TARGET" line (an alias page)
#   name   a name of the NAME section: its lines joined, up to the "\-" that
#          starts the description (which may be on a later line)
#   syn    an identifier right before a '(' on a .B or .BI line
declare -A first=() has_th=() alias_of=() names=() documented=()
while IFS=$'\t' read -r page kind value; do
	case $kind in
	first) first[$page]=$value ;;
	th) has_th[$page]=1 ;;
	so) [ -n "${alias_of[$page]:-}" ] || alias_of[$page]=$value ;;
	name) names[$page]+=" $value " ;;
	syn) documented[$value]+=" $page" ;;
	esac
done < <(awk '
	function base(f) { sub(/.*\//, "", f); return f }
	function flush_name(   s, n, a, i) {
		if (!in_name) return
		in_name = 0
		s = name_text
		sub(/\\-.*/, "", s)
		gsub(/\\f[BIRP]/, "", s)
		n = split(s, a, /[, \t]+/)
		for (i = 1; i <= n; i++)
			if (a[i] != "") print page "\tname\t" a[i]
	}
	FNR == 1 { flush_name(); page = base(FILENAME); print page "\tfirst\t" $0 }
	/^\.\\"/ { next }
	/^\.TH[ \t]/ { print page "\tth\t1" }
	/^\.so[ \t]+man3\/[^ \t]+[ \t]*$/ { t = $2; sub(/^man3\//, "", t); print page "\tso\t" t }
	/^\.SH/ {
		flush_name()
		if ($0 ~ /^\.SH[ \t]+"?NAME"?[ \t]*$/) { in_name = 1; name_text = "" }
		next
	}
	in_name { name_text = name_text " " $0 }
	/^\.BI?[ \t]/ {
		s = $0
		while (match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
			id = substr(s, RSTART, RLENGTH)
			sub(/[ \t]*\($/, "", id)
			print page "\tsyn\t" id
			s = substr(s, RSTART + RLENGTH)
		}
	}
	END { flush_name() }
' "${pages[@]}")

# Names in the NAME sections of full pages count as documented too.
for page in "${!names[@]}"; do
	[ -n "${alias_of[$page]:-}" ] && continue
	for n in ${names[$page]}; do
		documented[$n]+=" $page"
	done
done
# (.B/.BI entries of alias pages do not count: an alias holds only ".so".)
for fn in "${!documented[@]}"; do
	for page in ${documented[$fn]}; do
		if [ -z "${alias_of[$page]:-}" ]; then continue 2; fi
	done
	unset "documented[$fn]"
done

# --- Every function has an entry and a page of its own name ------------------
nmissing=0
for fn in $declared; do
	if [ -z "${documented[$fn]:-}" ]; then
		problem "$fn: no page has it in NAME or a .B/.BI synopsis line"
		nmissing=$((nmissing + 1))
	fi
	page=$fn.3
	if [ ! -f "$mandir/$page" ]; then
		problem "$fn: man/$page is missing (add the page or a '.so man3/<page>.3' alias)"
		nmissing=$((nmissing + 1))
		continue
	fi
	target=${alias_of[$page]:-}
	if [ -z "$target" ]; then
		[[ ${names[$page]:-} == *" $fn "* ]] ||
			problem "man/$page does not list $fn in its NAME section"
	elif [ ! -f "$mandir/$target" ]; then
		: # reported with the page checks below
	elif [ -n "${alias_of[$target]:-}" ]; then
		problem "man/$page: .so target man/$target is itself an alias"
	elif [[ ${names[$target]:-} != *" $fn "* ]]; then
		problem "man/$page: .so target man/$target does not list $fn in NAME"
	fi
done

# --- Every page: SPDX line, installed, well-formed ----------------------------
mesonfile=$mandir/meson.build
meson_text=
[ -f "$mesonfile" ] && meson_text=$(<"$mesonfile")
for p in "${pages[@]}"; do
	page=${p##*/}
	if [ "${first[$page]:-}" != '.\" SPDX-License-Identifier: MIT' ]; then
		problem "man/$page: the first line is not '.\\\" SPDX-License-Identifier: MIT'"
	fi
	if [[ $meson_text != *"'$page'"* ]]; then
		problem "man/$page is not listed in man/meson.build (it would not be installed)"
	fi
	target=${alias_of[$page]:-}
	if [ -n "$target" ]; then
		[ -f "$mandir/$target" ] || problem "man/$page: .so target man/$target does not exist"
	elif [ -z "${has_th[$page]:-}" ]; then
		problem "man/$page has no .TH line"
	fi
done

# --- Lint -------------------------------------------------------------------
# Alias pages were checked above; their ".so man3/..." only resolves in an
# installed tree, so only full pages are formatted.
lint=
if command -v groff >/dev/null 2>&1; then
	lint=groff
elif command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- '--warnings'; then
	lint=man
else
	echo "SKIP lint: neither groff nor man-db's man is installed"
fi
if [ -n "$lint" ]; then
	nlinted=0
	for p in "${pages[@]}"; do
		page=${p##*/}
		[ -n "${alias_of[$page]:-}" ] && continue
		if [ "$lint" = groff ]; then
			warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$p" 2>&1 >/dev/null) ||
				problem "man/$page: groff failed"
		else
			warnings=$(LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null) ||
				problem "man/$page: man failed"
		fi
		if [ -n "$warnings" ]; then
			problem "man/$page: $lint warnings:"
			sed 's/^/  /' <<<"$warnings"
		fi
		nlinted=$((nlinted + 1))
	done
	echo "lint ($lint): $nlinted pages formatted"
fi

if [ "$fail" -eq 0 ]; then
	echo "man pages OK: ${#pages[@]} files document all $ndeclared functions"
elif [ "$nmissing" -gt 0 ]; then
	echo "$nmissing missing man page entries"
fi
exit "$fail"
