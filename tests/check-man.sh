#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check the man pages in man/ against the public API:
#  - every function declared with VCPU_API in include/vcpu/*.h is documented:
#    (a) some full page names it in its NAME section or in a .B/.BI line of
#        its SYNOPSIS section,
#    (b) man/<name>.3 exists: the page itself (listing it in NAME) or a
#        ".so man3/<page>.3" alias whose target exists and lists it in NAME;
#  - every page (man/*.3, man/*.7) starts with the SPDX line, is listed in
#    man/meson.build (install_man() there is what installs it), has no
#    control characters other than tab and newline, and, unless it
#    is an alias, has a .TH line whose title is the page's name in capitals,
#    whose section is the file's suffix, and whose source is "libvcpu X.Y.Z"
#    with X.Y.Z the `version:` of the top-level meson.build;
#  - every full page's first section is NAME and its last SEE ALSO;
#  - every full section 3 page that documents functions (its NAME lists a
#    VCPU_API function; the index page libvcpu.3 does not) has exactly these
#    sections, in this order, none of them empty:
#        NAME, SYNOPSIS, DESCRIPTION, RETURN VALUE, ERRORS, THREAD SAFETY,
#        [NOTES], [CAVEATS], [BUGS], EXAMPLES (or EXAMPLE), SEE ALSO
#    (the bracketed ones optional: remarks that are neither errors nor thread
#    rules go after THREAD SAFETY, as man-pages(7) puts NOTES after
#    ATTRIBUTES), and its SYNOPSIS has a .B/.BI prototype for every function
#    of its NAME, includes the header that declares each of them, and says
#    "Link with $(pkg-config --libs LIB)" for exactly one LIB: libvcpu-mock
#    for the functions of <vcpu/mock.h>, libvcpu for all others;
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

# --- The project version ------------------------------------------------------
# The first `version: '...'` line of the top-level meson.build: project()'s.
version=$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	echo "FAIL: no X.Y.Z version: line in $root/meson.build (found '$version')"
	exit 1
fi
source_field="libvcpu $version"

# --- The public API -----------------------------------------------------------
# Per header: join backslash continuations, drop preprocessor lines (the
# #define of VCPU_API itself), put everything on one line, strip comments,
# and start a new line at each VCPU_API.  A declaration is
# "VCPU_API <type> name(...": the name is the identifier right before the
# first '(' (no ';' before it).
declare -A header_of=()
for h in "$hdrdir"/*.h; do
	while read -r fn; do
		[ -n "$fn" ] && header_of[$fn]=${h##*/}
	done < <(
		sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$h" | { grep -v '^[[:space:]]*#' || true; } |
			{ tr '\n' ' ' && echo; } |
			sed -E -e 's#/\*([^*]|\*+[^*/])*\*+/# #g' -e 's/\<VCPU_API\>/\n@VCPU_API@/g' |
			sed -n -e 's/^@VCPU_API@\([^(;]*\)(.*/\1/' -e T \
				-e 's/^.*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*$/\1/p'
	)
done
declared=$(printf '%s\n' "${!header_of[@]}" | sort -u)
if [ -z "$declared" ]; then
	echo "FAIL: found no VCPU_API declarations in $hdrdir"
	exit 1
fi
ndeclared=$(wc -l <<<"$declared")
echo "public headers declare $ndeclared VCPU_API functions; version $version"

if [ ! -d "$mandir" ]; then
	echo "FAIL: no man/ directory in $root"
	exit 1
fi
shopt -s nullglob
pages=("$mandir"/*.3 "$mandir"/*.7)
shopt -u nullglob
if [ ${#pages[@]} -eq 0 ]; then
	echo "FAIL: no section 3 or 7 pages in $mandir"
	exit 1
fi

# --- Read every page once ------------------------------------------------------
# One awk pass prints "PAGE<TAB>KIND<TAB>VALUE" lines:
#   first  the page's first line
#   th     the .TH line's title, section and source, separated by '|'
#   so     the target of a ".so man3/TARGET" line (an alias page)
#   sh     a section heading (.SH), in order, quotes removed
#   body   a section that has some text (printed once per section)
#   name   a name of the NAME section: its lines joined, up to the "\-" that
#          starts the description (which may be on a later line)
#   syn    an identifier right before a '(' on a .B or .BI line of SYNOPSIS
#   inc    a <vcpu/HEADER> #included in SYNOPSIS
#   lib    LIB of a "pkg-config [--cflags] --libs LIB" in SYNOPSIS
declare -A first=() th=() alias_of=() sections=() has_body=() names=() documented=()
declare -A syn_of=() incs=() libs=()
while IFS=$'\t' read -r page kind value; do
	case $kind in
	first) first[$page]=$value ;;
	th) th[$page]=$value ;;
	so) [ -n "${alias_of[$page]:-}" ] || alias_of[$page]=$value ;;
	sh) sections[$page]+="${sections[$page]:+|}$value" ;;
	body) has_body[$page|$value]=1 ;;
	name) names[$page]+=" $value " ;;
	syn)
		documented[$value]+=" $page"
		syn_of[$page]+=" $value "
		;;
	inc) incs[$page]+=" $value " ;;
	lib) libs[$page]+=" $value " ;;
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
	# The arguments of a request line: blank-separated, "..." quoted.
	function args(line, out,   n, c, i, cur, inq, have) {
		sub(/^\.[A-Za-z]+[ \t]*/, "", line)
		n = 0; cur = ""; inq = 0; have = 0
		for (i = 1; i <= length(line); i++) {
			c = substr(line, i, 1)
			if (c == "\"") { inq = !inq; have = 1; continue }
			if (!inq && (c == " " || c == "\t")) {
				if (have) { out[++n] = cur; cur = ""; have = 0 }
				continue
			}
			cur = cur c; have = 1
		}
		if (have) out[++n] = cur
		return n
	}
	FNR == 1 { flush_name(); page = base(FILENAME); sec = ""; print page "\tfirst\t" $0 }
	/^\.\\"/ { next }
	/^\.TH[ \t]/ {
		delete a
		args($0, a)
		print page "\tth\t" a[1] "|" a[2] "|" a[4]
		next
	}
	/^\.so[ \t]+man3\/[^ \t]+[ \t]*$/ { t = $2; sub(/^man3\//, "", t); print page "\tso\t" t }
	/^\.SH/ {
		flush_name()
		s = $0
		sub(/^\.SH[ \t]*/, "", s)
		gsub(/"/, "", s)
		sub(/[ \t]+$/, "", s)
		sec = s
		print page "\tsh\t" sec
		if (sec == "NAME") { in_name = 1; name_text = "" }
		next
	}
	sec != "" && NF && !/^\.(PP|P|LP|in|nf|fi|EX|EE|RS|RE|sp|br|nh|ad|na)([ \t]|$)/ {
		if (!((page, sec) in body_seen)) {
			body_seen[page, sec] = 1
			print page "\tbody\t" sec
		}
	}
	in_name { name_text = name_text " " $0 }
	sec == "SYNOPSIS" && /^\.BI?[ \t]/ {
		s = $0
		while (match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
			id = substr(s, RSTART, RLENGTH)
			sub(/[ \t]*\($/, "", id)
			print page "\tsyn\t" id
			s = substr(s, RSTART + RLENGTH)
		}
	}
	sec == "SYNOPSIS" && match($0, /#include <vcpu\/[A-Za-z0-9_]+\.h>/) {
		h = substr($0, RSTART + 15, RLENGTH - 16)
		print page "\tinc\t" h
	}
	sec == "SYNOPSIS" {
		s = $0
		gsub(/\\/, "", s)
		while (match(s, /pkg-config (--cflags )?--libs [A-Za-z0-9_.+-]+/)) {
			l = substr(s, RSTART, RLENGTH)
			sub(/.* /, "", l)
			print page "\tlib\t" l
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
		problem "$fn: no page has it in NAME or a .B/.BI line of SYNOPSIS"
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
# Sections of a function page, in order; the optional ones in brackets.
required="NAME SYNOPSIS DESCRIPTION RETURN_VALUE ERRORS THREAD_SAFETY EXAMPLES SEE_ALSO"
order_re='^NAME\|SYNOPSIS\|DESCRIPTION\|RETURN VALUE\|ERRORS\|THREAD SAFETY(\|NOTES)?(\|CAVEATS)?(\|BUGS)?\|EXAMPLES?\|SEE ALSO$'
nfunction_pages=0
for p in "${pages[@]}"; do
	page=${p##*/}
	if [ "${first[$page]:-}" != '.\" SPDX-License-Identifier: MIT' ]; then
		problem "man/$page: the first line is not '.\\\" SPDX-License-Identifier: MIT'"
	fi
	if [[ $meson_text != *"'$page'"* ]]; then
		problem "man/$page is not listed in man/meson.build (it would not be installed)"
	fi
	# groff takes most of them silently (a form feed where "\f" was meant).
	if LC_ALL=C grep -n $'[\x01-\x08\x0b-\x1f\x7f]' "$p" >/dev/null; then
		problem "man/$page has control characters on lines:" \
			"$(LC_ALL=C grep -n $'[\x01-\x08\x0b-\x1f\x7f]' "$p" | cut -d: -f1 | xargs)"
	fi
	target=${alias_of[$page]:-}
	if [ -n "$target" ]; then
		[ -f "$mandir/$target" ] || problem "man/$page: .so target man/$target does not exist"
		[[ $page == *.3 ]] || problem "man/$page: only section 3 pages may be .so aliases"
		continue
	fi

	# .TH TITLE SECTION DATE SOURCE MANUAL
	if [ -z "${th[$page]+set}" ]; then
		problem "man/$page has no .TH line"
	else
		IFS='|' read -r th_title th_section th_source <<<"${th[$page]}"
		stem=${page%.*}
		[ "$th_title" = "${stem^^}" ] ||
			problem "man/$page: .TH title is '$th_title', not '${stem^^}'"
		[ "$th_section" = "${page##*.}" ] ||
			problem "man/$page: .TH section is '$th_section', not '${page##*.}'"
		[ "$th_source" = "$source_field" ] ||
			problem "man/$page: .TH source is '$th_source', not '$source_field' (meson.build's version)"
	fi

	secs=${sections[$page]:-}
	[[ $secs == NAME\|* ]] || problem "man/$page: the first section is not NAME (sections: ${secs//|/, })"
	[[ $secs == *\|"SEE ALSO" ]] || problem "man/$page: the last section is not SEE ALSO (sections: ${secs//|/, })"

	# A function page: its NAME lists a VCPU_API function.
	fns=()
	for n in ${names[$page]:-}; do
		[ -n "${header_of[$n]:-}" ] && fns+=("$n")
	done
	[[ $page == *.3 ]] && [ ${#fns[@]} -gt 0 ] || continue
	nfunction_pages=$((nfunction_pages + 1))
	if ! [[ $secs =~ $order_re ]]; then
		problem "man/$page: sections are: ${secs//|/, }"
		echo "  expected: ${required//_/ } (NOTES, CAVEATS, BUGS optional before EXAMPLES)"
	fi
	IFS='|' read -r -a seclist <<<"$secs"
	for s in "${seclist[@]}"; do
		[ -n "${has_body[$page|$s]:-}" ] || problem "man/$page: section $s is empty"
	done
	mock=0 other=0
	for fn in "${fns[@]}"; do
		[[ ${syn_of[$page]:-} == *" $fn "* ]] ||
			problem "man/$page: $fn is in NAME but has no .B/.BI prototype in SYNOPSIS"
		[[ ${incs[$page]:-} == *" ${header_of[$fn]} "* ]] ||
			problem "man/$page: SYNOPSIS does not #include <vcpu/${header_of[$fn]}>, which declares $fn"
		if [ "${header_of[$fn]}" = mock.h ]; then mock=1; else other=1; fi
	done
	if [ $mock = 1 ] && [ $other = 1 ]; then
		problem "man/$page documents functions of <vcpu/mock.h> (libvcpu-mock) and of libvcpu on one page"
		continue
	fi
	want=libvcpu
	[ $mock = 1 ] && want=libvcpu-mock
	found=$(printf '%s\n' ${libs[$page]:-} | sort -u | xargs)
	[ "$found" = "$want" ] ||
		problem "man/$page: SYNOPSIS must say 'Link with \$(pkg-config \\-\\-libs $want)' (found: '${found:-none}')"
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
	echo "man pages OK: ${#pages[@]} files document all $ndeclared functions;" \
		"$nfunction_pages function pages have every required section"
elif [ "$nmissing" -gt 0 ]; then
	echo "$nmissing missing man page entries"
fi
exit "$fail"
