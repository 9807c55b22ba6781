package handlers

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/announce"
	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/staff"
	"github.com/fineline/fineline/stats"
)

// Pages of the console once signed in. Every write calls the same domain
// operation as the JSON API, then records who did it in the audit log.

type purposeRow struct {
	Key, Name, Statement, Categories, Status string
	Sensitive, SaleOrShare, Retired          bool
	// Today is the purpose's numbers today (the overview's).
	Today *stats.PurposePeriod
}

type overviewPage struct {
	consoleBase
	Purposes      []purposeRow
	InForce       int
	Drafts        []noticeRow
	Announcements []announcementRow
	Staff         int
	// Counted says the analytics are there; Subjects counts the shoppers
	// with a record.
	Counted  bool
	Subjects int64
}

type announcementRow struct {
	Version                       int
	Queued, Sent, Failed, Skipped int
	Built                         bool
}

// consoleOverview shows what the merchant runs: purposes, the notice in
// force and the drafts waiting, how far announcements have gone, staff.
func (a *API) consoleOverview(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	p := overviewPage{consoleBase: a.consolePage(c, "overview")}
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return err
	}
	p.Purposes = purposeRows(p.L, ps)
	if a.Reports != nil {
		_, today, err := a.Reports.Range(m, stats.Daily, "", "")
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(ps))
		for _, pur := range ps {
			keys = append(keys, pur.Key)
		}
		r, err := a.Reports.Purposes(ctx, m, keys, stats.Daily, today, today)
		if err != nil {
			return err
		}
		p.Counted, p.Subjects = true, r.Subjects
		for i := range p.Purposes {
			for _, pp := range r.Periods[0].Purposes {
				if pp.Purpose == p.Purposes[i].Key {
					p.Purposes[i].Today = &pp
				}
			}
		}
	}
	vs, err := a.Notices.List(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, v := range vs {
		switch {
		case v.Status == notices.Draft:
			p.Drafts = append(p.Drafts, noticeRowOf(p.L.Lang, v))
		case v.Material && a.Announcer != nil:
			pr, err := a.Announcer.Progress(ctx, m.ID, v.Number)
			if err != nil {
				return err
			}
			if !pr.Built || pr.Queued > 0 || pr.Failed > 0 {
				p.Announcements = append(p.Announcements, announcementOf(v.Number, pr))
			}
		}
	}
	if p.InForce, err = a.Notices.VersionInForce(ctx, m.ID); err != nil {
		return err
	}
	members, err := a.Staff.Members(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, mb := range members {
		if mb.Active() {
			p.Staff++
		}
	}
	return a.render(c, http.StatusOK, "console/overview", p)
}

func announcementOf(n int, pr announce.Progress) announcementRow {
	return announcementRow{Version: n, Queued: pr.Queued, Sent: pr.Sent, Failed: pr.Failed, Skipped: pr.Skipped, Built: pr.Built}
}

func purposeRows(l *locales.Localizer, ps []consent.Purpose) []purposeRow {
	out := make([]purposeRow, 0, len(ps))
	for _, pur := range ps {
		t := pur.TextFor(l.Lang)
		r := purposeRow{Key: pur.Key, Name: t.Name, Statement: t.Statement, Categories: categories(l, pur),
			Sensitive: pur.Sensitive, SaleOrShare: pur.SaleOrShare, Retired: pur.Retired(), Status: l.T("console_offered")}
		if r.Retired {
			r.Status = l.Tf("console_retired_on", "When", formatTime(pur.RetiredAt))
		}
		out = append(out, r)
	}
	return out
}

type categoryOption struct {
	Key, Name string
	Sensitive bool
	Checked   bool
}

func categoryOptions(l *locales.Localizer, checked []string) []categoryOption {
	var out []categoryOption
	for _, k := range consent.Categories() {
		out = append(out, categoryOption{Key: k, Name: l.Category(k), Sensitive: consent.SensitiveCategory(k), Checked: slices.Contains(checked, k)})
	}
	return out
}

type localeOption struct {
	Code, Name string
	Current    bool
}

func localeOptions(current string) []localeOption {
	var out []localeOption
	for _, code := range locales.Supported() {
		out = append(out, localeOption{Code: code, Name: locales.Name(code), Current: code == current})
	}
	return out
}

type purposesPage struct {
	consoleBase
	Purposes   []purposeRow
	Categories []categoryOption
	Locales    []localeOption
	Bases      []string
}

func (a *API) consolePurposes(c *gin.Context) error {
	ps, err := a.Purposes.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	p := purposesPage{consoleBase: a.consolePage(c, "purposes")}
	p.Purposes = purposeRows(p.L, ps)
	p.Categories = categoryOptions(p.L, nil)
	p.Locales = localeOptions(merchant(c).DefaultLocale)
	p.Bases = []string{string(consent.BasisConsent), string(consent.BasisContract), string(consent.BasisLegitimateInterest), string(consent.BasisLegalObligation)}
	return a.render(c, http.StatusOK, "console/purposes", p)
}

// consoleCreatePurpose creates a purpose from the form, as POST /v1/purposes.
func (a *API) consoleCreatePurpose(c *gin.Context) error {
	lang := c.PostForm("locale")
	pur, err := a.Purposes.Create(c.Request.Context(), consent.Purpose{
		MerchantID: merchant(c).ID, Key: strings.TrimSpace(c.PostForm("key")), DefaultLocale: lang,
		Texts:          map[string]consent.Text{lang: {Name: c.PostForm("name"), Statement: c.PostForm("statement")}},
		DataCategories: c.PostFormArray("category"), Sensitive: c.PostForm("sensitive") == "on", SaleOrShare: c.PostForm("sale_or_share") == "on",
		LegalBasis: consent.LegalBasis(c.PostForm("legal_basis")),
	})
	if err != nil {
		return err
	}
	a.audit(c, "purpose.created", pur.Key, pur.TextFor(lang).Name)
	done(c, "purposes", "purpose_created")
	return nil
}

type wordingRow struct {
	Code, Name       string
	Title, Statement string
}

type purposePage struct {
	consoleBase
	Purpose    purposeRow
	Texts      []wordingRow
	Categories []categoryOption
}

// consolePurpose shows one purpose with the form that changes its words
// (through a notice draft) and the one that retires it.
func (a *API) consolePurpose(c *gin.Context) error {
	pur, err := a.Purposes.Get(c.Request.Context(), merchant(c).ID, c.Param("key"))
	if err != nil {
		return err
	}
	p := purposePage{consoleBase: a.consolePage(c, "purposes")}
	p.Purpose = purposeRows(p.L, []consent.Purpose{pur})[0]
	for _, code := range locales.Supported() {
		t := pur.Texts[code]
		p.Texts = append(p.Texts, wordingRow{Code: code, Name: locales.Name(code), Title: t.Name, Statement: t.Statement})
	}
	p.Categories = categoryOptions(p.L, pur.DataCategories)
	return a.render(c, http.StatusOK, "console/purpose", p)
}

// consoleRewordPurpose turns the edited words into a notice draft (as
// PATCH /v1/purposes/{key}): only the languages whose words changed, and
// the data categories when they changed.
func (a *API) consoleRewordPurpose(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	pur, err := a.Purposes.Get(ctx, m.ID, c.Param("key"))
	if err != nil {
		return err
	}
	w := consent.Wording{Purpose: pur.Key, Texts: map[string]consent.Text{}}
	for _, code := range locales.Supported() {
		t := consent.Text{Name: strings.TrimSpace(c.PostForm("name." + code)), Statement: strings.TrimSpace(c.PostForm("statement." + code))}
		old := pur.Texts[code]
		if t.Name == "" && t.Statement == "" || t == old {
			continue
		}
		w.Texts[code] = t
	}
	if cats := c.PostFormArray("category"); !slices.Equal(slices.Sorted(slices.Values(cats)), slices.Sorted(slices.Values(pur.DataCategories))) {
		w.DataCategories = append([]string{}, cats...)
	}
	v, _, err := a.rewordPurpose(ctx, m.ID, w)
	if err != nil {
		return err
	}
	a.audit(c, "purpose.reworded", pur.Key, fmt.Sprintf("draft %d", v.Number))
	done(c, "notices/"+strconv.Itoa(v.Number), "draft_created")
	return nil
}

// consoleRetirePurpose retires a purpose once the form confirms it.
func (a *API) consoleRetirePurpose(c *gin.Context) error {
	if c.PostForm("confirm") != "yes" {
		return apperr.New(apperr.Invalid, "tick the box to confirm that the purpose stops being offered").WithDetail("unconfirmed")
	}
	pur, err := a.Purposes.Retire(c.Request.Context(), merchant(c).ID, c.Param("key"))
	if err != nil {
		return err
	}
	a.audit(c, "purpose.retired", pur.Key, "")
	done(c, "purposes", "purpose_retired")
	return nil
}

type noticeRow struct {
	Number                     int
	Status, Summary, Effective string
	Material, Draft            bool
	Purposes                   string
}

func noticeRowOf(lang string, v notices.Version) noticeRow {
	r := noticeRow{Number: v.Number, Status: string(v.Status), Summary: textFor(v, lang).Summary, Material: v.Material, Draft: v.Status == notices.Draft,
		Purposes: strings.Join(v.Purposes, ", ")}
	if !v.EffectiveAt.IsZero() {
		r.Effective = formatTime(v.EffectiveAt)
	}
	return r
}

type consoleNoticesPage struct {
	consoleBase
	Versions []noticeRow
}

func (a *API) consoleNotices(c *gin.Context) error {
	vs, err := a.Notices.List(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	p := consoleNoticesPage{consoleBase: a.consolePage(c, "notices")}
	for i := len(vs) - 1; i >= 0; i-- {
		p.Versions = append(p.Versions, noticeRowOf(p.L.Lang, vs[i]))
	}
	return a.render(c, http.StatusOK, "console/notices", p)
}

// consoleCreateNotice starts a draft from the form (English summary and text).
func (a *API) consoleCreateNotice(c *gin.Context) error {
	known, err := a.knownPurposes(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	v, err := a.Notices.Create(c.Request.Context(), merchant(c).ID, notices.Content{
		Texts:     map[string]notices.Summary{"en": {Summary: c.PostForm("summary.en"), Text: c.PostForm("text.en")}},
		PolicyURL: strings.TrimSpace(c.PostForm("policy_url")),
	}, known)
	if err != nil {
		return err
	}
	a.audit(c, "notice.created", strconv.Itoa(v.Number), "")
	done(c, "notices/"+strconv.Itoa(v.Number), "draft_created")
	return nil
}

type noticeText struct {
	Code, Name, Summary, Text string
}

type purposeOption struct {
	Key, Name string
	Checked   bool
}

type consoleNoticePage struct {
	consoleBase
	Version  noticeRow
	Texts    []noticeText
	Policy   string
	Purposes []purposeOption
	// Preview is the draft as the shopper's review page will show it.
	Preview  reviewVersion
	Wordings []string
	Progress *announcementRow
	Deadline string
}

// consoleNotice shows a version: for a draft, its preview exactly as the
// review page renders it (the same template), its form and the publish
// form; for a published one, its announcement's progress.
func (a *API) consoleNotice(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	v, err := a.Notices.Get(ctx, m.ID, n)
	if err != nil {
		return err
	}
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return err
	}
	p := consoleNoticePage{consoleBase: a.consolePage(c, "notices"), Version: noticeRowOf(localizer(c).Lang, v), Policy: v.PolicyURL}
	for _, code := range locales.Supported() {
		t := v.Texts[code]
		p.Texts = append(p.Texts, noticeText{Code: code, Name: locales.Name(code), Summary: t.Summary, Text: t.Text})
	}
	for _, pur := range consent.Offered(ps) {
		p.Purposes = append(p.Purposes, purposeOption{Key: pur.Key, Name: pur.TextFor(p.L.Lang).Name, Checked: slices.Contains(v.Purposes, pur.Key)})
	}
	for _, w := range v.Wordings {
		name := w.Purpose
		if t, ok := w.Texts[p.L.Lang]; ok {
			name = t.Name
		}
		p.Wordings = append(p.Wordings, name)
	}
	if !v.Deadline.IsZero() {
		p.Deadline = formatTime(v.Deadline)
	}
	if v.Status == notices.Draft {
		p.Preview, err = a.previewVersion(c, v, ps)
		if err != nil {
			return err
		}
	} else if v.Material && a.Announcer != nil {
		pr, err := a.Announcer.Progress(ctx, m.ID, v.Number)
		if err != nil {
			return err
		}
		row := announcementOf(v.Number, pr)
		p.Progress = &row
	}
	return a.render(c, http.StatusOK, "console/notice", p)
}

// previewVersion builds the review page's section for a draft, against the
// version in force, with the purposes it would ask about in the words they
// would have once it is published.
func (a *API) previewVersion(c *gin.Context, v notices.Version, ps []consent.Purpose) (reviewVersion, error) {
	ctx := c.Request.Context()
	l := localizer(c)
	inForce, err := a.Notices.VersionInForce(ctx, v.MerchantID)
	if err != nil {
		return reviewVersion{}, err
	}
	rv := reviewVersion{L: l, Preview: true, New: v.Number, Old: inForce}
	a.describeVersion(ctx, &rv, v, basePath(c), time.Now())
	rv.When = l.T("console_preview_when")
	for _, pur := range ps {
		if !slices.Contains(v.Purposes, pur.Key) || pur.Retired() {
			continue
		}
		t := pur.TextFor(l.Lang)
		for _, w := range v.Wordings {
			if nt, ok := w.Texts[l.Lang]; ok && w.Purpose == pur.Key {
				t = nt
			}
		}
		rv.Purposes = append(rv.Purposes, reviewPurpose{Key: pur.Key, Name: t.Name, Statement: t.Statement, Version: v.Number})
	}
	return rv, nil
}

// consoleUpdateNotice saves a draft's texts, policy link and whether it is
// material (and for which purposes), as PUT /v1/notices/{version}.
func (a *API) consoleUpdateNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	known, err := a.knownPurposes(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	d := notices.Content{Texts: map[string]notices.Summary{}, PolicyURL: strings.TrimSpace(c.PostForm("policy_url")),
		Material: c.PostForm("material") == "on", Purposes: c.PostFormArray("purpose")}
	for _, code := range locales.Supported() {
		t := notices.Summary{Summary: strings.TrimSpace(c.PostForm("summary." + code)), Text: c.PostForm("text." + code)}
		if t.Summary != "" || strings.TrimSpace(t.Text) != "" {
			d.Texts[code] = t
		}
	}
	v, err := a.Notices.Update(c.Request.Context(), merchant(c).ID, n, d, known)
	if err != nil {
		return err
	}
	detail := "not material"
	if v.Material {
		detail = "material for " + strings.Join(v.Purposes, ", ")
	}
	a.audit(c, "notice.edited", strconv.Itoa(n), detail)
	done(c, "notices/"+strconv.Itoa(n), "draft_saved")
	return nil
}

// consolePublishNotice publishes a draft now or on a date, with a grace
// period, as POST /v1/notices/{version}/publish.
func (a *API) consolePublishNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	var at time.Time
	if d := strings.TrimSpace(c.PostForm("effective_on")); d != "" {
		if at, err = time.Parse(time.DateOnly, d); err != nil {
			return apperr.New(apperr.Invalid, "the date it takes effect must be a date (YYYY-MM-DD)").WithDetail("invalid_effective_at")
		}
		// Today (whose midnight has passed) means now.
		if now := time.Now().UTC(); !at.After(now) && now.Sub(at) < 24*time.Hour {
			at = time.Time{}
		}
	}
	grace, err := strconv.Atoi(strings.TrimSpace(c.DefaultPostForm("grace_days", "0")))
	if err != nil {
		return apperr.New(apperr.Invalid, "the grace period must be a number of days from 0 to 366").WithDetail("invalid_grace_period")
	}
	v, err := a.publishVersion(c.Request.Context(), merchant(c).ID, n, at, grace)
	if apperr.DetailOf(err) == notices.CodePublished {
		done(c, "notices/"+strconv.Itoa(n), "published") // pressed twice, or by someone else
		return nil
	}
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("effective %s, %d days' grace", formatTime(v.EffectiveAt), grace)
	if v.Material {
		detail += ", material for " + strings.Join(v.Purposes, ", ")
	}
	a.audit(c, "notice.published", strconv.Itoa(n), detail)
	done(c, "notices/"+strconv.Itoa(n), "published")
	return nil
}

func (a *API) consoleDiscardNotice(c *gin.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	if err := a.Notices.Discard(c.Request.Context(), merchant(c).ID, n); err != nil {
		return err
	}
	a.audit(c, "notice.discarded", strconv.Itoa(n), "")
	done(c, "notices", "discarded")
	return nil
}

type fieldRow struct {
	Key, Label, Explanation, Type, Purposes, Category string
}

type fieldsPage struct {
	consoleBase
	Fields     []fieldRow
	Types      []string
	Purposes   []purposeOption
	Categories []categoryOption
	Locales    []localeOption
}

// consoleFields lists the volunteered fields, with the form that declares
// one for an editor.
func (a *API) consoleFields(c *gin.Context) error {
	ctx := c.Request.Context()
	p := fieldsPage{consoleBase: a.consolePage(c, "fields")}
	if a.Fields != nil {
		fs, err := a.Fields.List(ctx, merchant(c).ID)
		if err != nil {
			return err
		}
		for _, f := range fs {
			t := f.TextFor(p.L.Lang)
			p.Fields = append(p.Fields, fieldRow{Key: f.Key, Label: t.Label, Explanation: t.Explanation, Type: string(f.Type),
				Purposes: strings.Join(f.Purposes, ", "), Category: p.L.Category(cmp.Or(f.Category, consent.CategoryPreference))})
		}
	}
	if p.CanConfigure && a.Fields != nil {
		var err error
		if p.Purposes, err = a.purposeOptions(c, nil); err != nil {
			return err
		}
		p.Types = []string{string(fields.TypeText), string(fields.TypeDate), string(fields.TypeChoice), string(fields.TypeNumber)}
		p.Categories = categoryOptions(p.L, []string{consent.CategoryPreference})
		p.Locales = localeOptions(merchant(c).DefaultLocale)
	}
	return a.render(c, http.StatusOK, "console/fields", p)
}

// purposeOptions lists the purposes on offer as choices, those in checked
// ticked.
func (a *API) purposeOptions(c *gin.Context, checked []string) ([]purposeOption, error) {
	ps, err := a.offeredPurposes(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return nil, err
	}
	l := localizer(c)
	out := make([]purposeOption, 0, len(ps))
	for _, pur := range ps {
		out = append(out, purposeOption{Key: pur.Key, Name: pur.TextFor(l.Lang).Name, Checked: slices.Contains(checked, pur.Key)})
	}
	return out, nil
}

// formNumber reads an optional number of a form: nil when left empty.
func formNumber(c *gin.Context, name string) (*float64, error) {
	v := strings.TrimSpace(c.PostForm(name))
	if v == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil, apperr.New(apperr.Invalid, "%s must be a number", name)
	}
	return &f, nil
}

// formLines reads a textarea of one item per line, blank lines left out.
func formLines(c *gin.Context, name string) []string {
	var out []string
	for _, line := range strings.Split(c.PostForm(name), "\n") {
		if v := strings.TrimSpace(line); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// consoleCreateField declares a field from the form, as POST /v1/fields.
func (a *API) consoleCreateField(c *gin.Context) error {
	min, err := formNumber(c, "min")
	if err != nil {
		return err
	}
	max, err := formNumber(c, "max")
	if err != nil {
		return err
	}
	lang := c.PostForm("locale")
	f, err := a.Fields.Create(c.Request.Context(), fields.Field{MerchantID: merchant(c).ID, Key: strings.TrimSpace(c.PostForm("key")), DefaultLocale: lang,
		Texts: map[string]fields.Text{lang: {Label: strings.TrimSpace(c.PostForm("label")), Explanation: strings.TrimSpace(c.PostForm("explanation"))}},
		Type:  fields.Type(c.PostForm("type")), OmitYear: c.PostForm("omit_year") == "on", Choices: formLines(c, "choices"), Min: min, Max: max,
		Purposes: c.PostFormArray("purpose"), Category: c.PostForm("category")})
	if err != nil {
		return err
	}
	a.audit(c, "field.created", f.Key, f.TextFor(lang).Label)
	done(c, "fields", "field_created")
	return nil
}

type offerRow struct {
	Key, Title, Reward, Purpose, Fields string
}

type offersPage struct {
	consoleBase
	Offers     []offerRow
	Purposes   []purposeOption
	Fields     []purposeOption
	DateFields []purposeOption
	Triggers   []string
	Locales    []localeOption
}

// consoleOffers lists the value exchanges, with the form that makes one
// for an editor.
func (a *API) consoleOffers(c *gin.Context) error {
	ctx := c.Request.Context()
	p := offersPage{consoleBase: a.consolePage(c, "offers")}
	if a.Offers != nil {
		os, err := a.Offers.List(ctx, merchant(c).ID)
		if err != nil {
			return err
		}
		for _, o := range os {
			t := o.TextFor(p.L.Lang)
			p.Offers = append(p.Offers, offerRow{Key: o.Key, Title: t.Title, Reward: t.Reward, Purpose: o.Purpose, Fields: strings.Join(o.Fields, ", ")})
		}
	}
	if p.CanConfigure && a.Offers != nil && a.Fields != nil {
		var err error
		if p.Purposes, err = a.purposeOptions(c, nil); err != nil {
			return err
		}
		fs, err := a.Fields.List(ctx, merchant(c).ID)
		if err != nil {
			return err
		}
		for _, f := range fs {
			o := purposeOption{Key: f.Key, Name: f.TextFor(p.L.Lang).Label}
			p.Fields = append(p.Fields, o)
			if f.Type == fields.TypeDate {
				p.DateFields = append(p.DateFields, o)
			}
		}
		p.Triggers = []string{string(offers.OnBirthday), string(offers.OnMonthStart)}
		p.Locales = localeOptions(merchant(c).DefaultLocale)
	}
	return a.render(c, http.StatusOK, "console/offers", p)
}

// consoleCreateOffer makes an offer from the form, as POST /v1/offers: its
// words in one language, the notice of financial incentive, and a yearly
// birthday coupon when a date field is chosen for it.
func (a *API) consoleCreateOffer(c *gin.Context) error {
	lang := c.PostForm("locale")
	text := func(name string) string { return strings.TrimSpace(c.PostForm(name)) }
	o := offers.Offer{MerchantID: merchant(c).ID, Key: text("key"), Purpose: c.PostForm("purpose"), Fields: c.PostFormArray("field"), DefaultLocale: lang,
		Texts: map[string]offers.Text{lang: {Title: text("title"), Reward: text("reward"), Notice: offers.Notice{
			Summary: text("summary"), MaterialTerms: text("material_terms"), HowToOptIn: text("how_to_opt_in"),
			RightToWithdraw: text("right_to_withdraw"), ValueEstimate: text("value_estimate"), ValueMethod: text("value_method")}}}}
	if b := c.PostForm("birthday_field"); b != "" {
		days, err := strconv.Atoi(cmp.Or(text("valid_days"), "0"))
		if err != nil {
			return apperr.New(apperr.Invalid, "valid_days must be a whole number of days").WithDetail("invalid_offer")
		}
		o.Birthday = &offers.Birthday{Field: b, On: offers.Trigger(c.PostForm("birthday_on")), ValidDays: days}
	}
	o, err := a.Offers.Create(c.Request.Context(), o)
	if err != nil {
		return err
	}
	a.audit(c, "offer.created", o.Key, o.TextFor(lang).Title)
	done(c, "offers", "offer_created")
	return nil
}

type widgetPage struct {
	consoleBase
	Origins string
	Tag     string
	Modes   []modeRow
}

// modeRow is one Google Consent Mode type and the purposes it needs.
type modeRow struct {
	Type     string
	Summary  string
	Purposes []purposeOption
}

// consoleWidget shows the sites that may embed the widget, the tag to
// copy, and the Consent Mode map.
func (a *API) consoleWidget(c *gin.Context) error {
	m, err := a.Merchants.Store.Merchant(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	ps, err := a.offeredPurposes(c.Request.Context(), m.ID)
	if err != nil {
		return err
	}
	p := widgetPage{consoleBase: a.consolePage(c, "widget"), Origins: strings.Join(m.AllowedOrigins, "\n"),
		Tag: `<script src="` + a.Center.BaseURL + `/widget.js" data-merchant="` + m.Slug + `" async></script>`}
	for _, typ := range merchants.ConsentModeTypes() {
		row := modeRow{Type: typ, Summary: strings.Join(m.ConsentMode[typ], ", ")}
		for _, pur := range ps {
			row.Purposes = append(row.Purposes, purposeOption{Key: pur.Key, Name: pur.TextFor(p.L.Lang).Name, Checked: slices.Contains(m.ConsentMode[typ], pur.Key)})
		}
		p.Modes = append(p.Modes, row)
	}
	// The page frames its preview (same origin only).
	c.Header("Content-Security-Policy", pageCSP+"; frame-src 'self'; frame-ancestors 'none'")
	return a.render(c, http.StatusOK, "console/widget", p)
}

type previewPage struct {
	consoleBase
	Handle string
}

// consoleWidgetPreview is an example page of the merchant's site with the
// widget on it, as its shoppers will see it in the member's language. The
// widget is the real script with the merchant's real purposes and texts,
// given the preview handle, so what a member clicks is decided as for a
// newcomer and recorded nowhere. The console's widget page frames it.
func (a *API) consoleWidgetPreview(c *gin.Context) error {
	c.Header("Content-Security-Policy", pageCSP+"; connect-src 'self'; frame-ancestors 'self'")
	c.Header("X-Frame-Options", "SAMEORIGIN")
	return a.render(c, http.StatusOK, "console/preview", previewPage{consoleBase: a.consolePage(c, "widget"), Handle: merchant(c).Slug + previewSuffix})
}

// consoleSaveWidget replaces the allowed origins (one per line) and the
// Consent Mode map (a type with no purpose ticked stays denied), as
// PUT /v1/widget-settings.
func (a *API) consoleSaveWidget(c *gin.Context) error {
	var origins []string
	for _, line := range strings.Split(c.PostForm("origins"), "\n") {
		if o := strings.TrimSpace(line); o != "" {
			origins = append(origins, o)
		}
	}
	mode := map[string][]string{}
	for _, typ := range merchants.ConsentModeTypes() {
		if ps := c.PostFormArray("mode." + typ); len(ps) > 0 {
			mode[typ] = ps
		}
	}
	ws, err := a.setWidgetSettings(c.Request.Context(), merchant(c).ID, merchants.WidgetSettings{AllowedOrigins: origins, ConsentMode: mode})
	if err != nil {
		return err
	}
	var modes []string
	for _, typ := range merchants.ConsentModeTypes() {
		if ps, ok := ws.ConsentMode[typ]; ok {
			modes = append(modes, typ+"="+strings.Join(ps, "+"))
		}
	}
	a.audit(c, "widget.settings_set", "", "origins: "+strings.Join(ws.AllowedOrigins, " ")+"; consent mode: "+strings.Join(modes, " "))
	done(c, "widget", "widget_saved")
	return nil
}

type keyRow struct {
	ID, Name, Scopes, Created, Revoked, LastUsed string
	Active                                       bool
}

type keysPage struct {
	consoleBase
	Keys   []keyRow
	Scopes []string
}

func (a *API) consoleKeys(c *gin.Context) error {
	ks, err := a.Merchants.Keys(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	p := keysPage{consoleBase: a.consolePage(c, "keys")}
	for _, s := range merchants.AllScopes() {
		p.Scopes = append(p.Scopes, string(s))
	}
	for _, k := range ks {
		r := keyRow{ID: k.ID, Name: k.Name, Created: formatTime(k.CreatedAt), Active: k.RevokedAt.IsZero()}
		var sc []string
		for _, s := range k.Scopes {
			sc = append(sc, string(s))
		}
		r.Scopes = strings.Join(sc, ", ")
		if !r.Active {
			r.Revoked = formatTime(k.RevokedAt)
		}
		if !k.LastUsedAt.IsZero() {
			r.LastUsed = formatTime(k.LastUsedAt)
		}
		p.Keys = append(p.Keys, r)
	}
	return a.render(c, http.StatusOK, "console/keys", p)
}

type keyCreatedPage struct {
	consoleBase
	Name, Secret string
}

// consoleCreateKey makes a key (after a recent sign-in) and shows its
// secret once, on a page nothing caches.
func (a *API) consoleCreateKey(c *gin.Context) error {
	var scopes []merchants.Scope
	for _, s := range c.PostFormArray("scope") {
		scopes = append(scopes, merchants.Scope(s))
	}
	k, secret, err := a.Merchants.CreateKey(c.Request.Context(), merchant(c).ID, c.PostForm("name"), scopes)
	if err != nil {
		return err
	}
	var sc []string
	for _, s := range k.Scopes {
		sc = append(sc, string(s))
	}
	a.audit(c, "api_key.created", k.ID, k.Name+" ("+strings.Join(sc, ", ")+")")
	return a.render(c, http.StatusCreated, "console/key_created", keyCreatedPage{consoleBase: a.consolePage(c, "keys"), Name: k.Name, Secret: secret})
}

func (a *API) consoleRevokeKey(c *gin.Context) error {
	if err := a.Merchants.Revoke(c.Request.Context(), merchant(c).ID, c.Param("id")); err != nil {
		return err
	}
	a.audit(c, "api_key.revoked", c.Param("id"), "")
	done(c, "keys", "key_revoked")
	return nil
}

type staffRow struct {
	ID, Email, Role, InvitedBy, Invited, SignedIn, Removed string
	Active, Me                                             bool
}

type staffPage struct {
	consoleBase
	Members []staffRow
	Roles   []localeOption
}

func (a *API) consoleStaff(c *gin.Context) error {
	ms, err := a.Staff.Members(c.Request.Context(), merchant(c).ID)
	if err != nil {
		return err
	}
	p := staffPage{consoleBase: a.consolePage(c, "staff")}
	for _, r := range staff.Roles() {
		p.Roles = append(p.Roles, localeOption{Code: string(r), Name: p.L.T("role_" + string(r)), Current: r == staff.Editor})
	}
	for _, m := range ms {
		r := staffRow{ID: m.ID, Email: m.Email, Role: p.L.T("role_" + string(m.Role)), InvitedBy: m.InvitedBy, Invited: formatTime(m.InvitedAt),
			Active: m.Active(), Me: p.Me != nil && m.ID == p.Me.ID}
		if !m.SignedInAt.IsZero() {
			r.SignedIn = formatTime(m.SignedInAt)
		}
		if !m.Active() {
			r.Removed = formatTime(m.RemovedAt)
		}
		p.Members = append(p.Members, r)
	}
	return a.render(c, http.StatusOK, "console/staff", p)
}

// consoleInvite invites a member with a role (after a recent sign-in) and
// emails them a link valid seven days.
func (a *API) consoleInvite(c *gin.Context) error {
	ctx := c.Request.Context()
	me, _ := signedInStaff(c)
	m := merchant(c)
	member, err := a.Staff.Invite(ctx, m.ID, c.PostForm("email"), staff.Role(c.PostForm("role")), me.Member.Email)
	if err != nil {
		return err
	}
	a.audit(c, "staff.invited", member.Email, string(member.Role))
	if err := a.sendConsoleLink(ctx, m, member, localizer(c).Lang, true); err != nil {
		// The member is invited; only the mail failed: say so, and let the
		// owner invite again once mail works.
		a.Log.ErrorContext(ctx, "staff invitation not sent", "request_id", requestID(c), "merchant_id", m.ID, "err", err)
		done(c, "staff", "invite_unsent")
		return nil
	}
	done(c, "staff", "invited")
	return nil
}

func (a *API) consoleRemoveStaff(c *gin.Context) error {
	member, err := a.Staff.Remove(c.Request.Context(), merchant(c).ID, c.Param("id"))
	if err != nil {
		return err
	}
	a.audit(c, "staff.removed", member.Email, string(member.Role))
	done(c, "staff", "removed")
	return nil
}

type auditRow struct {
	At, Actor, Action, Target, Detail string
}

type auditPage struct {
	consoleBase
	Entries []auditRow
	Next    string
}

// consoleAudit lists the audit log, newest first, a page at a time.
func (a *API) consoleAudit(c *gin.Context) error {
	es, next, err := a.Staff.Audit(c.Request.Context(), merchant(c).ID, c.Query("before"), 50)
	if err != nil {
		return err
	}
	p := auditPage{consoleBase: a.consolePage(c, "audit")}
	if next != "" {
		p.Next = p.Base + "audit?before=" + next
	}
	for _, e := range es {
		p.Entries = append(p.Entries, auditRow{At: formatTime(e.At), Actor: e.Actor, Action: p.L.T("audit_" + strings.ReplaceAll(e.Action, ".", "_")),
			Target: e.Target, Detail: e.Detail})
	}
	return a.render(c, http.StatusOK, "console/audit", p)
}
