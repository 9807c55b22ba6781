package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/receipts"
)

type purposeView struct {
	Key, Name, Statement, Data, SwitchLabel, Status string
	On, Sensitive                                   bool
	// Fields are the volunteered fields this purpose needs (each shown
	// under the first purpose that needs it).
	Fields []fieldView
}

type prefsPage struct {
	page
	Offers     []offerView
	Purposes   []purposeView
	Saved      bool
	Changes    []string
	ReceiptURL string
}

// choices reads the merchant's purposes, the signed-in subject's record
// and the decision on each purpose now.
func (a *API) choices(c *gin.Context) ([]consent.Purpose, consent.Record, []consent.Decision, error) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return nil, consent.Record{}, nil, err
	}
	rec, err := a.Ledger.State(ctx, m.ID, sess.SubjectID)
	if err != nil {
		return nil, consent.Record{}, nil, err
	}
	ds, err := a.Ledger.DecideAll(ctx, m.ID, rec, ps)
	return ps, rec, ds, err
}

// preferences shows one card per purpose with the subject's current choice.
func (a *API) preferences(c *gin.Context) {
	ps, rec, ds, err := a.choices(c)
	if err != nil {
		a.renderError(c, err)
		return
	}
	p := prefsPage{page: a.newPage(c)}
	l := p.L
	fs, own, err := a.ownFields(c)
	if err != nil {
		a.renderError(c, err)
		return
	}
	if p.Offers, err = a.offerViews(c, ps, ds, fs, own); err != nil {
		a.renderError(c, err)
		return
	}
	for i, pur := range ps {
		t := pur.TextFor(l.Lang)
		v := purposeView{Key: pur.Key, Name: t.Name, Statement: t.Statement, Data: categories(l, pur), SwitchLabel: l.T("allow_purpose"), Sensitive: pur.Sensitive}
		st, ok := rec.Purposes[pur.Key]
		// A switch shows what is allowed now: consent that changed terms
		// have paused is off until the shopper gives it again.
		v.On = ds[i].Allowed
		switch {
		case !ok:
			v.Status = l.T("status_never")
		case ds[i].Reason == consent.ReasonReconsentRequired:
			v.Status = l.Tf("status_paused", "When", formatTime(ds[i].ReconsentBy))
		case ds[i].Reason == consent.ReasonReconsentDue:
			v.Status = l.Tf("status_due", "When", formatTime(ds[i].ReconsentBy))
		case st.State == consent.Granted:
			v.Status = l.Tf("status_on", "When", formatTime(st.At), "Version", st.NoticeVersion)
		default:
			v.Status = l.Tf("status_off", "When", formatTime(st.At), "Version", st.NoticeVersion)
		}
		for _, f := range fs {
			if firstNeeding(ps, f) == pur.Key {
				v.Fields = append(v.Fields, newFieldView(l, ps, f, own[f.Key]))
			}
		}
		p.Purposes = append(p.Purposes, v)
	}
	if id := c.Query("receipt"); id != "" {
		r, err := a.ownReceipt(c, id)
		if err != nil {
			a.renderError(c, err)
			return
		}
		p.Saved, p.ReceiptURL = true, basePath(c)+"receipts/"+r.ID
		for _, ch := range r.Changes {
			name := ch.Purpose
			for _, pur := range ps {
				if pur.Key == ch.Purpose {
					name = pur.TextFor(l.Lang).Name
				}
			}
			if ch.State == string(consent.Granted) {
				p.Changes = append(p.Changes, l.Tf("change_on", "Name", name))
			} else {
				p.Changes = append(p.Changes, l.Tf("change_off", "Name", name))
			}
		}
	} else if c.Query("saved") == "1" {
		p.Saved = true
	}
	if p.Saved && c.Query("details") == "1" {
		p.Changes = append(p.Changes, l.T("change_details"))
	}
	if e := c.Query("erased"); p.Saved && e != "" {
		var labels []string
		for _, f := range fs {
			if slices.Contains(strings.Split(e, ","), f.Key) {
				labels = append(labels, f.TextFor(l.Lang).Label)
			}
		}
		if len(labels) > 0 {
			p.Changes = append(p.Changes, l.Tf("change_erased", "Fields", strings.Join(labels, ", ")))
		}
	}
	a.render(c, http.StatusOK, "preferences", p)
}

// savePreferences records one ledger event (channel center) per purpose
// whose switch changed, issues a signed receipt, and redirects to the page.
// "Turn everything off" withdraws every granted purpose; nothing here ever
// switches a purpose on except its own switch.
func (a *API) savePreferences(c *gin.Context) {
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	if err := c.Request.ParseForm(); err != nil {
		a.renderError(c, apperr.New(apperr.Invalid, "unreadable form"))
		return
	}
	form := c.Request.PostForm
	action := form.Get("action")
	if action != "save" && action != "all_off" {
		a.renderError(c, apperr.New(apperr.Invalid, "unknown action"))
		return
	}
	ps, rec, ds, err := a.choices(c)
	if err != nil {
		a.renderError(c, err)
		return
	}
	known := func(k string) bool {
		return slices.ContainsFunc(ps, func(p consent.Purpose) bool { return p.Key == k })
	}
	shown, on := form["shown"], form["on"]
	for _, k := range append(slices.Clone(shown), on...) {
		if !known(k) {
			a.renderError(c, apperr.New(apperr.Invalid, "unknown purpose in form"))
			return
		}
	}
	// Volunteered fields are checked against the switches as saved, before
	// anything is written: a value goes only with a purpose that needs it.
	willBeOn := func(key string) bool {
		i := slices.IndexFunc(ps, func(p consent.Purpose) bool { return p.Key == key })
		if i < 0 || action == "all_off" {
			return false
		}
		if slices.Contains(shown, key) {
			return slices.Contains(on, key)
		}
		return ds[i].Allowed
	}
	fs, own, err := a.ownFields(c)
	if err != nil {
		a.renderError(c, err)
		return
	}
	var edits []fieldEdit
	if action == "save" {
		if edits, err = a.checkFieldEdits(c, ps, form, fs, own, willBeOn); err != nil {
			a.renderError(c, err)
			return
		}
	}
	var changes []receipts.Change
	for i, p := range ps {
		if !slices.Contains(shown, p.Key) && action != "all_off" {
			continue // not on the page the shopper saw: leave it alone
		}
		want := action == "save" && slices.Contains(on, p.Key)
		// "Has" is what the page showed: allowed now. Switching on a purpose
		// whose consent changed terms paused grants it under the new terms;
		// "turn everything off" also withdraws paused consent.
		has := ds[i].Allowed
		if action == "all_off" {
			has = rec.Purposes[p.Key].State == consent.Granted
		}
		if want == has {
			continue
		}
		state := consent.Withdrawn
		if want {
			state = consent.Granted
		}
		res, err := a.Ledger.Record(ctx, consent.Change{MerchantID: m.ID, SubjectID: sess.SubjectID, Purpose: p.Key, State: state,
			Channel: consent.ChannelCenter, Actor: "session:" + sess.ID, ExplicitOptIn: want})
		if err != nil {
			a.renderError(c, err)
			return
		}
		rec = rec.Apply(res.Event)
		changes = append(changes, receipts.Change{Purpose: p.Key, State: string(state)})
	}
	if err := a.applyFieldEdits(c, edits); err != nil {
		a.renderError(c, err)
		return
	}
	// Say what the save did to volunteered details: changed, or erased
	// because the shopper emptied them or switched off what they were for.
	extra := url.Values{}
	var erased []string
	for _, f := range fs {
		if _, had := own[f.Key]; !had {
			continue
		}
		off := !slices.ContainsFunc(f.Purposes, func(k string) bool { return rec.Purposes[k].State == consent.Granted })
		emptied := slices.ContainsFunc(edits, func(e fieldEdit) bool { return e.remove && e.field.Key == f.Key })
		if off || emptied {
			erased = append(erased, f.Key)
		}
	}
	if len(erased) > 0 {
		extra.Set("erased", strings.Join(erased, ","))
	}
	if len(edits) > len(erased) {
		extra.Set("details", "1")
	}
	if len(changes) == 0 {
		extra.Set("saved", "1")
		c.Redirect(http.StatusSeeOther, basePath(c)+"preferences?"+extra.Encode())
		return
	}
	a.receiptAndShow(c, ps, rec, changes, extra)
}

// ownFields reads the merchant's fields and the signed-in subject's values.
func (a *API) ownFields(c *gin.Context) ([]fields.Field, map[string]string, error) {
	if a.Fields == nil {
		return nil, nil, nil
	}
	ctx := c.Request.Context()
	sess, _ := session(c)
	m := merchant(c)
	fs, err := a.Fields.List(ctx, m.ID)
	if err != nil {
		return nil, nil, err
	}
	own, err := a.Fields.Own(ctx, m.ID, sess.SubjectID, fs)
	return fs, own, err
}

// firstNeeding is the first of the merchant's purposes that needs f.
func firstNeeding(ps []consent.Purpose, f fields.Field) string {
	for _, p := range ps {
		if f.Needs(p.Key) {
			return p.Key
		}
	}
	return ""
}

// receiptAndShow issues a receipt for a save and shows the choices with it
// (and, in extra, what happened to volunteered details).
func (a *API) receiptAndShow(c *gin.Context, ps []consent.Purpose, rec consent.Record, changes []receipts.Change, extra url.Values) {
	id, err := a.issueReceipt(c, ps, rec, changes)
	if err != nil {
		a.renderError(c, err)
		return
	}
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("receipt", id)
	c.Redirect(http.StatusSeeOther, basePath(c)+"preferences?"+q.Encode())
}

// issueReceipt signs a Kantara receipt of the subject's choices and keeps it.
func (a *API) issueReceipt(c *gin.Context, ps []consent.Purpose, rec consent.Record, changes []receipts.Change) (string, error) {
	ctx := c.Request.Context()
	m := merchant(c)
	l := localizer(c)
	now := time.Now().UTC()
	policy := a.Center.BaseURL + basePath(c)
	if v, err := a.Notices.Current(ctx, m.ID); err == nil && v.PolicyURL != "" {
		policy = v.PolicyURL
	}
	r := receipts.Receipt{
		Jurisdiction: a.Center.Jurisdiction, ConsentTimestamp: now.Unix(), CollectionMethod: "web form: Fineline preference center",
		ConsentReceiptID: receipts.NewID(), Language: l.Lang, PIIPrincipalID: rec.SubjectID,
		PIIControllers: []receipts.PIIController{{PIIController: m.Name, Contact: "Privacy team", PIIControllerURL: a.Center.BaseURL + basePath(c)}},
		PolicyURL:      policy, Services: []receipts.Service{}, SPICat: []string{},
		Fineline: receipts.Extension{Merchant: m.ID},
	}
	var granted []receipts.Purpose
	for _, p := range ps {
		st, ok := rec.Purposes[p.Key]
		if !ok {
			continue
		}
		r.Fineline.States = append(r.Fineline.States, receipts.PurposeState{Purpose: p.Key, State: string(st.State), Seq: st.Seq, NoticeVersion: st.NoticeVersion, Channel: string(st.Channel), At: st.At.Unix()})
		if st.State != consent.Granted {
			continue
		}
		rp := receipts.Purpose{Purpose: p.TextFor(l.Lang).Name + ": " + p.TextFor(l.Lang).Statement, PurposeCategory: []string{p.Key}, ConsentType: "EXPLICIT",
			PIICategory: p.DataCategories, Termination: "until withdrawn in the preference center", ThirdPartyDisclosure: p.SaleOrShare}
		if p.SaleOrShare {
			rp.ThirdPartyName = "partners named in the privacy notice"
		}
		granted = append(granted, rp)
		if p.Sensitive {
			for _, cat := range p.DataCategories {
				if slices.Contains(consent.SensitiveCategories(), cat) && !slices.Contains(r.SPICat, cat) {
					r.SPICat = append(r.SPICat, cat)
				}
			}
		}
	}
	if len(granted) > 0 {
		r.Services = []receipts.Service{{Service: m.Name, Purposes: granted}}
	}
	r.Sensitive = len(r.SPICat) > 0
	tok, err := a.Center.Signer.Sign(r)
	if err != nil {
		return "", err
	}
	issued := receipts.Issued{ID: r.ConsentReceiptID, MerchantID: m.ID, SubjectID: rec.SubjectID, Token: tok, CreatedAt: now.Truncate(time.Millisecond), Changes: changes}
	if err := a.Center.Receipts.SaveReceipt(ctx, issued); err != nil {
		return "", err
	}
	return issued.ID, nil
}

// ownReceipt returns a receipt of the signed-in subject; another subject's
// receipt is not found, like one that does not exist.
func (a *API) ownReceipt(c *gin.Context, id string) (receipts.Issued, error) {
	sess, _ := session(c)
	if len(id) != 22 {
		return receipts.Issued{}, apperr.New(apperr.NotFound, "no such receipt")
	}
	r, err := a.Center.Receipts.Receipt(c.Request.Context(), id)
	if err != nil {
		return receipts.Issued{}, err
	}
	if r.MerchantID != sess.MerchantID || r.SubjectID != sess.SubjectID {
		return receipts.Issued{}, apperr.New(apperr.NotFound, "no such receipt")
	}
	return r, nil
}

type receiptRow struct{ Name, Choice string }

type receiptPage struct {
	page
	ID, When, DownloadURL string
	Rows                  []receiptRow
}

// showReceipt shows a receipt in plain words, with its signed download.
func (a *API) showReceipt(c *gin.Context) {
	r, err := a.ownReceipt(c, c.Param("id"))
	if err != nil {
		a.renderError(c, err)
		return
	}
	claims, err := receipts.Verify(r.Token, a.Center.Signer.JWKS(), a.Center.Signer.Issuer())
	if err != nil {
		a.renderError(c, err)
		return
	}
	ps, err := a.Purposes.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		a.renderError(c, err)
		return
	}
	p := receiptPage{page: a.newPage(c), ID: r.ID, When: formatTime(r.CreatedAt), DownloadURL: basePath(c) + "receipts/" + r.ID + "/download"}
	l := p.L
	for _, pur := range ps {
		row := receiptRow{Name: pur.TextFor(l.Lang).Name, Choice: l.T("choice_none")}
		for _, st := range claims.Fineline.States {
			if st.Purpose == pur.Key {
				row.Choice = l.T("choice_" + st.State)
			}
		}
		p.Rows = append(p.Rows, row)
	}
	a.render(c, http.StatusOK, "receipt", p)
}

// downloadReceipt sends the signed receipt as a file.
func (a *API) downloadReceipt(c *gin.Context) {
	r, err := a.ownReceipt(c, c.Param("id"))
	if err != nil {
		a.renderError(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="consent-receipt-`+r.ID+`.jwt"`)
	c.Data(http.StatusOK, "application/jwt", []byte(r.Token))
}

// jwks publishes the receipt-signing public keys.
func (a *API) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", a.Center.Signer.JWKS())
}
