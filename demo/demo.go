// Package demo seeds the "Demo Shop" merchant on a fresh install, so a
// newcomer has purposes, a published notice and an API key to try at once.
package demo

import (
	"context"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
)

// Slug is the demo merchant's slug.
const Slug = "demo-shop"

// Marks remembers which one-time seeds have run.
type Marks interface {
	// Seeded reports whether the named seed completed.
	Seeded(ctx context.Context, name string) (bool, error)
	// MarkSeeded records that the named seed completed.
	MarkSeeded(ctx context.Context, name string, at time.Time) error
}

// Seeder creates the demo merchant.
type Seeder struct {
	Marks     Marks
	Merchants *merchants.Service
	Purposes  *consent.Purposes
	Subjects  *consent.Subjects
	Ledger    *consent.Ledger
	Notices   *notices.Service
	Now       func() time.Time
}

// Result is what a seed did.
type Result struct {
	// Seeded is false when the demo merchant existed already.
	Seeded   bool
	Merchant merchants.Merchant
	// APIKey is the new key's secret, set only when Seeded.
	APIKey string
}

// Seed creates the demo merchant once. Every step is idempotent and the
// completion mark is written last, so a start that crashed half-way seeds
// the rest next time and never twice.
func (s *Seeder) Seed(ctx context.Context) (Result, error) {
	done, err := s.Marks.Seeded(ctx, Slug)
	if err != nil || done {
		return Result{}, err
	}
	m, err := s.Merchants.Store.MerchantBySlug(ctx, Slug)
	var secret string
	switch {
	case apperr.Is(err, apperr.NotFound):
		m, _, secret, err = s.Merchants.Create(ctx, merchants.NewMerchant{Slug: Slug, Name: "Demo Shop", DefaultLocale: "en"})
		if err != nil {
			return Result{}, err
		}
	case err != nil:
		return Result{}, err
	default:
		_, secret, err = s.Merchants.CreateKey(ctx, m.ID, "demo key", merchants.AllScopes())
		if err != nil {
			return Result{}, err
		}
	}
	for _, p := range Purposes() {
		p.MerchantID = m.ID
		if _, err := s.Purposes.Create(ctx, p); err != nil && !apperr.Is(err, apperr.Conflict) {
			return Result{}, err
		}
	}
	latest, err := s.Notices.VersionInForce(ctx, m.ID)
	if err != nil {
		return Result{}, err
	}
	if latest == 0 {
		if _, err := s.Notices.PublishFirst(ctx, m.ID, noticeTexts(), "https://demo-shop.example/privacy"); err != nil {
			return Result{}, err
		}
	}
	if err := s.seedShopper(ctx, m.ID); err != nil {
		return Result{}, err
	}
	if err := s.Marks.MarkSeeded(ctx, Slug, s.Now().UTC()); err != nil {
		return Result{}, err
	}
	return Result{Seeded: true, Merchant: m, APIKey: secret}, nil
}

// seedShopper adds one shopper who signed up for the newsletter at checkout.
func (s *Seeder) seedShopper(ctx context.Context, merchantID string) error {
	email, locale, tz := "alice@example.com", "en", "Europe/London"
	if _, _, err := s.Subjects.Put(ctx, merchantID, "alice", consent.SubjectUpdate{Email: &email, Locale: &locale, TimeZone: &tz}); err != nil {
		return err
	}
	rec, err := s.Ledger.State(ctx, merchantID, "alice")
	if err != nil || rec.Seq > 0 {
		return err
	}
	_, err = s.Ledger.Record(ctx, consent.Change{MerchantID: merchantID, SubjectID: "alice", Purpose: "newsletter", State: consent.Granted, Channel: consent.ChannelImport, Actor: "seed"})
	return err
}

func noticeTexts() map[string]notices.Summary {
	return map[string]notices.Summary{
		"en": {Summary: "Demo Shop uses your data only for what you switch on: a newsletter, recommendations, a birthday reward, partner offers and wellness tips. Everything is off until you choose.",
			Text: "# Privacy notice\n\nDemo Shop uses your data only for the purposes you switch on in the preference center.\n\nWe keep your choices with the time and the version of this notice you saw, and you can change them at any time.\n\nWe never sell your data. Offers from partners are only sent if you switch them on.\n\nWrite to privacy@demo-shop.example with any question."},
		"es": {Summary: "Demo Shop solo usa tus datos para lo que actives: boletín, recomendaciones, regalo de cumpleaños, ofertas de socios y consejos de bienestar. Todo está desactivado hasta que elijas.",
			Text: "# Aviso de privacidad\n\nDemo Shop solo usa tus datos para los fines que actives en el centro de preferencias.\n\nGuardamos tus elecciones con la fecha y la versión de este aviso que viste, y puedes cambiarlas cuando quieras.\n\nNunca vendemos tus datos. Las ofertas de socios solo se envían si las activas.\n\nEscribe a privacy@demo-shop.example si tienes cualquier pregunta."},
		"de": {Summary: "Demo Shop nutzt deine Daten nur für das, was du einschaltest: Newsletter, Empfehlungen, Geburtstagsgeschenk, Partnerangebote und Wohlfühltipps. Alles ist aus, bis du wählst.",
			Text: "# Datenschutzhinweis\n\nDemo Shop nutzt deine Daten nur für die Zwecke, die du im Einstellungscenter einschaltest.\n\nWir speichern deine Entscheidungen mit Zeitpunkt und der Version dieses Hinweises, die du gesehen hast, und du kannst sie jederzeit ändern.\n\nWir verkaufen deine Daten nie. Partnerangebote kommen nur, wenn du sie einschaltest.\n\nSchreib bei Fragen an privacy@demo-shop.example."},
		"fr": {Summary: "Demo Shop n'utilise vos données que pour ce que vous activez : newsletter, recommandations, cadeau d'anniversaire, offres partenaires et conseils bien-être. Tout est désactivé jusqu'à votre choix.",
			Text: "# Politique de confidentialité\n\nDemo Shop n'utilise vos données que pour les finalités que vous activez dans le centre de préférences.\n\nNous conservons vos choix avec la date et la version de cette politique que vous avez vue, et vous pouvez les modifier à tout moment.\n\nNous ne vendons jamais vos données. Les offres de partenaires ne sont envoyées que si vous les activez.\n\nÉcrivez à privacy@demo-shop.example pour toute question."},
	}
}

// Purposes are the demo merchant's purposes, each stated in plain language
// in English, Spanish, German and French.
func Purposes() []consent.Purpose {
	return []consent.Purpose{
		{
			Key: "newsletter", DataCategories: []string{"email"}, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Newsletter", Statement: "We email you new arrivals and sales, about twice a month."},
				"es": {Name: "Boletín", Statement: "Te enviamos por correo las novedades y rebajas, unas dos veces al mes."},
				"de": {Name: "Newsletter", Statement: "Wir schicken dir etwa zweimal im Monat Neuheiten und Angebote per E-Mail."},
				"fr": {Name: "Newsletter", Statement: "Nous vous envoyons les nouveautés et les soldes par e-mail, environ deux fois par mois."},
			},
		},
		{
			Key: "recommendations", DataCategories: []string{"purchase_history", "browsing_history"}, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Personal recommendations", Statement: "We use what you bought and viewed with us to suggest products you may like, on our site and in our emails."},
				"es": {Name: "Recomendaciones personales", Statement: "Usamos lo que compraste y viste con nosotros para sugerirte productos que te pueden gustar, en la web y en nuestros correos."},
				"de": {Name: "Persönliche Empfehlungen", Statement: "Wir nutzen, was du bei uns gekauft und angesehen hast, um dir passende Produkte vorzuschlagen, im Shop und in unseren E-Mails."},
				"fr": {Name: "Recommandations personnelles", Statement: "Nous utilisons vos achats et les produits consultés chez nous pour vous suggérer des articles, sur le site et dans nos e-mails."},
			},
		},
		{
			Key: "birthday_reward", DataCategories: []string{"birthday", "email"}, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Birthday reward", Statement: "Tell us your birthday and we email you 15% off in your birthday month. We use your birthday for nothing else."},
				"es": {Name: "Regalo de cumpleaños", Statement: "Dinos tu cumpleaños y te enviamos un 15% de descuento en el mes de tu cumpleaños. No usamos tu fecha para nada más."},
				"de": {Name: "Geburtstagsgeschenk", Statement: "Verrate uns deinen Geburtstag und du bekommst in deinem Geburtsmonat 15 % Rabatt per E-Mail. Für nichts anderes nutzen wir ihn."},
				"fr": {Name: "Cadeau d'anniversaire", Statement: "Donnez-nous votre date d'anniversaire et recevez 15 % de réduction le mois de votre anniversaire. Nous ne l'utilisons pour rien d'autre."},
			},
		},
		{
			Key: "partner_sharing", DataCategories: []string{"email", "purchase_history"}, SaleOrShare: true, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Offers from partners", Statement: "We share your email and what you bought with selected partner brands so they can send you their own offers."},
				"es": {Name: "Ofertas de socios", Statement: "Compartimos tu correo y tus compras con marcas asociadas seleccionadas para que te envíen sus propias ofertas."},
				"de": {Name: "Angebote von Partnern", Statement: "Wir geben deine E-Mail-Adresse und deine Käufe an ausgewählte Partnermarken weiter, damit sie dir eigene Angebote schicken."},
				"fr": {Name: "Offres de partenaires", Statement: "Nous partageons votre e-mail et vos achats avec des marques partenaires choisies pour qu'elles vous envoient leurs offres."},
			},
		},
		{
			Key: "wellness_tips", DataCategories: []string{"purchase_history", "health"}, Sensitive: true, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Wellness tips", Statement: "We use your purchases of health products (such as vitamins or pregnancy tests) to send you related tips. This touches on your health, so it stays off unless you switch it on."},
				"es": {Name: "Consejos de bienestar", Statement: "Usamos tus compras de productos de salud (como vitaminas o pruebas de embarazo) para enviarte consejos. Afecta a tu salud, así que solo se activa si tú lo activas."},
				"de": {Name: "Wohlfühltipps", Statement: "Wir nutzen deine Käufe von Gesundheitsprodukten (etwa Vitamine oder Schwangerschaftstests), um dir passende Tipps zu schicken. Das betrifft deine Gesundheit, also bleibt es aus, bis du es einschaltest."},
				"fr": {Name: "Conseils bien-être", Statement: "Nous utilisons vos achats de produits de santé (vitamines, tests de grossesse...) pour vous envoyer des conseils. Cela touche à votre santé : c'est désactivé tant que vous ne l'activez pas."},
			},
		},
	}
}
