// Package doccheck keeps the section citations in the repository pointing
// at sections that exist. The repository's protocol documents
// (docs/libprocess-wire.md, docs/pkgpanda-cli.md) number their sections
// and give each an anchor; code cites them as
// "docs/libprocess-wire.md §4.3". The package's test reads the documents,
// collects their sections, and fails for any Go or C++ comment, Markdown
// file or conformance case that cites a section or document that does not
// exist, or that cites a section without naming its document.
//
// The package has no API; it exists for its test.
package doccheck

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// sectionNum is a section number: "4", "4.3", "11.7".
const sectionNum = `[0-9]+(?:\.[0-9]+)*`

// lookBehind is how far before a run of section numbers the name of its
// document is looked for.
const lookBehind = 96

var (
	// headingRE is a numbered heading: "## 4. HTTP routes" or
	// "### 4.3 Route lookup".
	headingRE = regexp.MustCompile(`^#{2,4} (` + sectionNum + `)\.? \S`)
	// anchorRE is the anchor line that precedes every numbered heading.
	anchorRE = regexp.MustCompile(`^<a id="s(` + sectionNum + `)"></a>$`)
	// runRE is a run of section numbers cited together: "§n", "§n, §m"
	// (the comma may end a comment line), "§n–§m and §k".
	runRE = regexp.MustCompile(`§` + sectionNum + `(?:(?:,[\s*]+|[\s*]+and[\s*]+|[\s*]+or[\s*]+|–|-|/)§` + sectionNum + `)*`)
	// numRE picks the numbers out of a run.
	numRE = regexp.MustCompile(`§(` + sectionNum + `)`)
	// docBeforeRE is a document named right before a run: "docs/x.md",
	// "x.md" or "x" (the conformance suite writes "pkgpanda-cli §n"),
	// then white space or comment continuation ('*').
	docBeforeRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])(docs/)?([a-z0-9]+(?:-[a-z0-9]+)*)(\.md)?[\s*]*$`)
	// rfcBeforeRE is an RFC named right before a run: "RFC 9112 §n"
	// cites another document, not ours.
	rfcBeforeRE = regexp.MustCompile(`\bRFC ?[0-9]+[\s*]*$`)
	// anchorLinkRE is a Markdown link to a section's anchor.
	anchorLinkRE = regexp.MustCompile(`(?:docs/)?([a-z0-9]+(?:-[a-z0-9]+)*)\.md#s(` + sectionNum + `)\b`)
	// staleRE is a citation of the protocol notes that used to live
	// outside the repository.
	staleRE = regexp.MustCompile(`\bspec (?:§|[0-9])|\bCLI spec\b|\bwire spec\b|shared/spec/`)
)

// parseSections returns the section numbers of one document and what is
// wrong with its numbering: every numbered heading must come right after
// an anchor line with the same number, numbers must be unique, and a
// subsection's parent section must exist.
func parseSections(text string) (map[string]bool, []string) {
	nums := make(map[string]bool)
	var problems []string
	lines := strings.Split(text, "\n")
	fence := false
	pending := ""  // number of the anchor waiting for its heading
	pendingAt := 0 // its line
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		if m := anchorRE.FindStringSubmatch(line); m != nil {
			if pending != "" {
				problems = append(problems, fmt.Sprintf("line %d: anchor s%s is not followed by its heading", pendingAt, pending))
			}
			pending, pendingAt = m[1], i+1
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			if pending != "" && strings.TrimSpace(line) != "" {
				problems = append(problems, fmt.Sprintf("line %d: anchor s%s is not followed by its heading", pendingAt, pending))
				pending = ""
			}
			continue
		}
		num := m[1]
		switch {
		case pending == "":
			problems = append(problems, fmt.Sprintf("line %d: heading %s has no anchor line <a id=\"s%s\"></a> before it", i+1, num, num))
		case pending != num:
			problems = append(problems, fmt.Sprintf("line %d: heading %s follows the anchor of %s", i+1, num, pending))
		}
		pending = ""
		if nums[num] {
			problems = append(problems, fmt.Sprintf("line %d: section %s is numbered twice", i+1, num))
		}
		nums[num] = true
	}
	if pending != "" {
		problems = append(problems, fmt.Sprintf("line %d: anchor s%s is not followed by its heading", pendingAt, pending))
	}
	var sorted []string
	for n := range nums {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		if i := strings.LastIndexByte(n, '.'); i >= 0 && !nums[n[:i]] {
			problems = append(problems, fmt.Sprintf("section %s has no parent section %s", n, n[:i]))
		}
	}
	return nums, problems
}

// citation is one section cited in a text.
type citation struct {
	// doc is the word right before the run, without "docs/" and ".md":
	// the document's name when it names one, "" when nothing is there.
	doc string
	// explicit says doc was written as a file ("docs/x.md" or "x.md"), so
	// it must be a document; a plain word may just be prose ("see §n").
	explicit bool
	num      string // section number
	off      int    // byte offset of its '§' (or of the link) in the text
	rfc      bool   // the run cites an RFC, not one of our documents
}

// findCitations returns every section cited in text: each number of each
// run of "§n" numbers, with the document named right before the run (if
// any), and every link to a section anchor ("x.md#sn.m").
func findCitations(text string) []citation {
	var out []citation
	for _, r := range runRE.FindAllStringIndex(text, -1) {
		// The name is right before the run; a short window keeps the
		// anchored matches below from rescanning the whole text.
		before := text[max(0, r[0]-lookBehind):r[0]]
		doc, explicit := "", false
		rfc := rfcBeforeRE.MatchString(before)
		if m := docBeforeRE.FindStringSubmatch(before); m != nil && !rfc {
			doc, explicit = m[2], m[1] != "" || m[3] != ""
		}
		for _, n := range numRE.FindAllStringSubmatchIndex(text[r[0]:r[1]], -1) {
			out = append(out, citation{doc: doc, explicit: explicit, num: text[r[0]+n[2] : r[0]+n[3]], off: r[0] + n[0], rfc: rfc})
		}
	}
	for _, m := range anchorLinkRE.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, citation{doc: text[m[2]:m[3]], explicit: true, num: text[m[4]:m[5]], off: m[0]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].off < out[j].off })
	return out
}

// segment is one comment (or line) of a source file: its text with the
// comment markers removed, and the line it starts on.
type segment struct {
	text string
	line int
	off  int // byte offset of text in the source, where known (C++)
}

// joined concatenates segments with newlines, so a citation may run from
// one comment line to the next, and maps offsets back to lines.
type joined struct {
	text   string
	starts []int // offset of each segment in text
	segs   []segment
}

func join(segs []segment) joined {
	var b strings.Builder
	j := joined{segs: segs}
	for _, s := range segs {
		j.starts = append(j.starts, b.Len())
		b.WriteString(s.text)
		b.WriteByte('\n')
	}
	j.text = b.String()
	return j
}

// lineOf returns the source line of the byte at offset off of j.text.
func (j joined) lineOf(off int) int {
	i := sort.SearchInts(j.starts, off+1) - 1
	if i < 0 {
		return 0
	}
	return j.segs[i].line + strings.Count(j.text[j.starts[i]:off], "\n")
}

// cppComments returns the comments of C or C++ source, markers removed,
// skipping string and character literals (raw strings included).
func cppComments(src string) []segment {
	var out []segment
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case strings.HasPrefix(src[i:], "//"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			out = append(out, segment{text: src[i+2 : i+end], line: line, off: i + 2})
			i += end
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				end = len(src) - i - 2
			}
			body := src[i+2 : i+2+end]
			out = append(out, segment{text: body, line: line, off: i + 2})
			line += strings.Count(body, "\n")
			i += 2 + end + 2
		case c == 'R' && strings.HasPrefix(src[i:], `R"`) && (i == 0 || !identByte(src[i-1])):
			open := strings.IndexByte(src[i+2:], '(')
			if open < 0 {
				i = len(src)
				break
			}
			delim := src[i+2 : i+2+open]
			end := strings.Index(src[i+2+open:], ")"+delim+`"`)
			if end < 0 {
				i = len(src)
				break
			}
			stop := i + 2 + open + end + len(delim) + 2
			line += strings.Count(src[i:stop], "\n")
			i = stop
		case c == '"' || (c == '\'' && (i == 0 || !identByte(src[i-1]))):
			// A literal ends at its closing quote or, unterminated, before
			// the end of its line.
			j := i + 1
			for j < len(src) && src[j] != c && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j < len(src) && src[j] == c {
				j++
			}
			j = min(j, len(src))
			line += strings.Count(src[i:j], "\n")
			i = j
		default:
			i++
		}
	}
	return out
}

// identByte reports whether c may be part of an identifier or a number
// (so a following quote is a digit separator or a prefix, not a literal).
func identByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
