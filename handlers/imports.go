package handlers

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Limits of POST /v1/imports.
const (
	// maxImportBody is the body limit: 100,000 lines of about 670 bytes on
	// average (a line with a long proof takes several kilobytes).
	maxImportBody = 64 << 20
	// maxImportLine is the longest line, in bytes.
	maxImportLine = 16 << 10
	// maxListedLines is how many invalid lines a refusal lists.
	maxListedLines = 1000
)

// ndjson is the media type of an import.
const ndjson = "application/x-ndjson"

// codeLineTooLong is the problem of a line over maxImportLine.
const codeLineTooLong = "line_too_long"

// importLineJSON is one line of an import.
type importLineJSON struct {
	Subject string        `json:"subject"`
	Purpose string        `json:"purpose"`
	State   consent.State `json:"state"`
	// GivenAt is read as text so that a bad time is that line's problem.
	GivenAt string `json:"given_at"`
	Source  string `json:"source"`
	Proof   string `json:"proof"`
}

// lineProblemJSON is an invalid line as a refusal lists it.
type lineProblemJSON struct {
	Line    int    `json:"line"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type lineResultJSON struct {
	Line   int    `json:"line"`
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
}

type importTotalsJSON struct {
	Lines      int `json:"lines"`
	Imported   int `json:"imported"`
	Duplicates int `json:"duplicate"`
	Unchanged  int `json:"unchanged"`
	Refused    int `json:"refused"`
}

type importJSON struct {
	Totals importTotalsJSON `json:"totals"`
	Lines  []lineResultJSON `json:"lines"`
}

// postImport brings in consent a merchant collected before Fineline: an
// NDJSON body, one decision a line. Every line is checked before any is
// written; the ledger decides each valid line (see consent.Ledger.Import).
func (a *API) postImport(c *gin.Context) error {
	if ct := c.ContentType(); ct != ndjson {
		return apperr.New(apperr.UnsupportedMedia, "send the decisions as NDJSON (one JSON object a line) with Content-Type: %s", ndjson)
	}
	// A full import (64 MiB in, 100,000 lines applied) takes longer than
	// the server's deadlines for other requests.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	_ = rc.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	lines, problems, err := readImportLines(c.Request.Body)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	imp := consent.Import{MerchantID: merchantID(c), Actor: actor(c), Lines: lines}
	if len(problems) > 0 {
		// Refused whole: list the domain's problems with the other lines too.
		more, err := a.Ledger.ValidateImport(ctx, imp)
		if err != nil && !apperr.Is(err, apperr.Invalid) {
			return err
		}
		problems = append(problems, more...)
		slices.SortStableFunc(problems, func(x, y consent.LineProblem) int { return x.Line - y.Line })
		return (&consent.InvalidLinesError{Problems: problems}).AppErr()
	}
	rep, err := a.Ledger.Import(ctx, imp)
	if err != nil {
		return err
	}
	out := importJSON{
		Totals: importTotalsJSON{Lines: len(rep.Lines), Imported: rep.Imported, Duplicates: rep.Duplicates, Unchanged: rep.Unchanged, Refused: rep.Refused},
		Lines:  make([]lineResultJSON, len(rep.Lines)),
	}
	for i, r := range rep.Lines {
		out.Lines[i] = lineResultJSON{Line: r.Line, Result: string(r.Result), Reason: r.Reason, Seq: r.Seq}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// readImportLines reads an NDJSON body: each line one JSON object, read as
// strictly as any JSON body (decodeStrict). Blank lines are skipped; lines
// are numbered as they are in the body, from 1. A line that is not a valid
// object is a problem of that line; more than consent.MaxImportLines lines,
// or a body over its limit, refuses the request at once.
func readImportLines(body io.Reader) ([]consent.ImportLine, []consent.LineProblem, error) {
	r := bufio.NewReaderSize(body, 64<<10)
	var (
		lines    []consent.ImportLine
		problems []consent.LineProblem
	)
	for n := 1; ; n++ {
		text, long, err := readLine(r)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, jsonError(err)
		}
		if len(bytes.TrimSpace(text)) > 0 || long {
			if len(lines)+len(problems) == consent.MaxImportLines {
				// Read the rest (the body limit bounds it), so that the
				// client, still sending, reads the answer.
				_, _ = io.Copy(io.Discard, r)
				return nil, nil, apperr.New(apperr.TooLarge, "an import takes at most %d lines: split the file and send the parts one after another", consent.MaxImportLines).WithDetail(consent.CodeTooManyLines)
			}
			ln, problem := parseImportLine(n, text, long)
			if problem != nil {
				problems = append(problems, *problem)
			} else {
				lines = append(lines, ln)
			}
		}
		if errors.Is(err, io.EOF) {
			return lines, problems, nil
		}
	}
}

// readLine reads one line without its end of line; long says it was over
// maxImportLine bytes (then text is empty and the rest of it was skipped).
// It returns io.EOF with the last line.
func readLine(r *bufio.Reader) (text []byte, long bool, err error) {
	var buf []byte
	for {
		part, err := r.ReadSlice('\n')
		if !long {
			buf = append(buf, part...)
			if len(buf) > maxImportLine+2 {
				long, buf = true, nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			return nil, true, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if len(buf) > maxImportLine {
			return nil, true, err
		}
		return buf, false, err
	}
}

// lineWording says "the line" where decodeStrict's messages say "the body".
var lineWording = strings.NewReplacer("the body", "the line", "body must", "the line must")

// parseImportLine decodes line number n.
func parseImportLine(n int, text []byte, long bool) (consent.ImportLine, *consent.LineProblem) {
	if long {
		return consent.ImportLine{}, &consent.LineProblem{Line: n, Code: codeLineTooLong, Message: "a line may be at most 16 KiB"}
	}
	var in importLineJSON
	if err := decodeStrict(bytes.NewReader(text), &in); err != nil {
		var ae *apperr.Error
		code, msg := codeMalformedJSON, "the line is not valid JSON"
		if errors.As(err, &ae) {
			code, msg = ae.Detail, lineWording.Replace(ae.Message)
		}
		return consent.ImportLine{}, &consent.LineProblem{Line: n, Code: code, Message: msg}
	}
	ln := consent.ImportLine{Line: n, SubjectID: in.Subject, Purpose: in.Purpose, State: in.State, Source: in.Source, Proof: in.Proof}
	if in.GivenAt != "" {
		at, err := time.Parse(time.RFC3339Nano, in.GivenAt)
		if err != nil {
			return consent.ImportLine{}, &consent.LineProblem{Line: n, Code: consent.CodeInvalidGivenAt, Message: "given_at must be an RFC 3339 time with its offset, such as 2024-05-01T09:30:00Z"}
		}
		ln.GivenAt = at
	}
	return ln, nil
}

// invalidLines lists the invalid lines of a refused import, nil for any
// other error.
func invalidLines(err error) []lineProblemJSON {
	var le *consent.InvalidLinesError
	if !errors.As(err, &le) {
		return nil
	}
	out := make([]lineProblemJSON, 0, min(len(le.Problems), maxListedLines))
	for _, p := range le.Problems[:min(len(le.Problems), maxListedLines)] {
		out = append(out, lineProblemJSON{Line: p.Line, Reason: p.Code, Message: p.Message})
	}
	return out
}
