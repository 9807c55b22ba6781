// Package demo seeds the "Demo Shop" merchant on a fresh install, so a
// newcomer has purposes, a published notice and an API key to try at once.
package demo

import (
	"context"
	"strconv"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/guard"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/recipients"
	"github.com/fineline/fineline/staff"
)

// Slug is the demo merchant's slug.
const Slug = "demo-shop"

// Owner is the demo merchant's owner: sign in to its console with it.
const Owner = "owner@demo-shop.example"

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
	// Fields and Offers, when set, get the demo's volunteered fields and
	// birthday offer (seeded once, also into an older demo merchant).
	Fields *fields.Service
	Offers *offers.Service
	// Guard, when set, gets the demo's attributes (seeded once).
	Guard *guard.Service
	// Recipients, when set, gets the demo's recipients (seeded once).
	Recipients *recipients.Service
	// Staff, when set, gets the demo's owner, Owner (seeded once).
	Staff *staff.Service
	Now   func() time.Time
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
	if err != nil {
		return Result{}, err
	}
	if done {
		if err := s.seedValueExchange(ctx); err != nil {
			return Result{}, err
		}
		if err := s.seedAttributes(ctx); err != nil {
			return Result{}, err
		}
		if err := s.seedRecipients(ctx); err != nil {
			return Result{}, err
		}
		if err := s.seedStaff(ctx); err != nil {
			return Result{}, err
		}
		return Result{}, s.seedConsentMode(ctx)
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
	if err := s.seedValueExchange(ctx); err != nil {
		return Result{}, err
	}
	if err := s.seedAttributes(ctx); err != nil {
		return Result{}, err
	}
	if err := s.seedRecipients(ctx); err != nil {
		return Result{}, err
	}
	if err := s.seedConsentMode(ctx); err != nil {
		return Result{}, err
	}
	if err := s.seedStaff(ctx); err != nil {
		return Result{}, err
	}
	return Result{Seeded: true, Merchant: m, APIKey: secret}, nil
}

// seedValueExchange adds the demo's fields (a birthday, month and day
// only, for the birthday reward; a shoe size for recommendations) and the
// birthday offer, once.
func (s *Seeder) seedValueExchange(ctx context.Context) error {
	if s.Fields == nil || s.Offers == nil {
		return nil
	}
	return s.seedOnce(ctx, Slug+"/value-exchange", func(merchantID string) error {
		for _, f := range Fields() {
			f.MerchantID = merchantID
			if _, err := s.Fields.Create(ctx, f); err != nil && !apperr.Is(err, apperr.Conflict) {
				return err
			}
		}
		o := BirthdayOffer()
		o.MerchantID = merchantID
		if _, err := s.Offers.Create(ctx, o); err != nil && !apperr.Is(err, apperr.Conflict) {
			return err
		}
		return nil
	})
}

// Fields are the demo merchant's volunteered fields.
func Fields() []fields.Field {
	sizes := []string{}
	for n := 35; n <= 48; n++ {
		sizes = append(sizes, strconv.Itoa(n))
	}
	return []fields.Field{
		{
			Key: "birthday", Type: fields.TypeDate, OmitYear: true, Purposes: []string{"birthday_reward"}, Category: consent.CategoryDemographic,
			Texts: map[string]fields.Text{
				"en": {Label: "Your birthday", Explanation: "Only the month and day, to send your birthday reward. We never ask for the year."},
				"es": {Label: "Tu cumpleaños", Explanation: "Solo el mes y el día, para enviarte tu regalo de cumpleaños. Nunca pedimos el año."},
				"de": {Label: "Dein Geburtstag", Explanation: "Nur Monat und Tag, um dir dein Geburtstagsgeschenk zu schicken. Nach dem Jahr fragen wir nie."},
				"fr": {Label: "Votre anniversaire", Explanation: "Seulement le mois et le jour, pour vous envoyer votre cadeau d'anniversaire. Nous ne demandons jamais l'année."},
			},
		},
		{
			Key: "shoe_size", Type: fields.TypeChoice, Choices: sizes, Purposes: []string{"recommendations"}, Category: consent.CategoryPhysicalDescription,
			Texts: map[string]fields.Text{
				"en": {Label: "Your shoe size (EU)", Explanation: "So the shoes we suggest come in your size."},
				"es": {Label: "Tu talla de calzado (UE)", Explanation: "Para que los zapatos que te sugerimos estén en tu talla."},
				"de": {Label: "Deine Schuhgröße (EU)", Explanation: "Damit die Schuhe, die wir dir vorschlagen, in deiner Größe da sind."},
				"fr": {Label: "Votre pointure (EU)", Explanation: "Pour que les chaussures suggérées existent dans votre pointure."},
			},
		},
	}
}

// BirthdayOffer is the demo merchant's birthday offer, with its notice of
// financial incentive.
func BirthdayOffer() offers.Offer {
	return offers.Offer{
		Key: "birthday_treat", Purpose: "birthday_reward", Fields: []string{"birthday"},
		Birthday: &offers.Birthday{Field: "birthday", On: offers.OnBirthday, ValidDays: 30},
		Texts: map[string]offers.Text{
			"en": {Title: "Birthday treat", Reward: "15% off everything, valid for 30 days from your birthday", Notice: offers.Notice{
				Summary:         "Tell us the month and day of your birthday and we email you a code for 15% off on your birthday.",
				MaterialTerms:   "One code a year, valid for 30 days from your birthday, for one order, not combinable with other codes. We keep your birthday only while the birthday reward is on.",
				HowToOptIn:      "Enter your birthday on this card and choose “Yes, join”.",
				RightToWithdraw: "You can stop at any time by switching off “Birthday reward” in your preferences. We then erase your birthday at once and send no more codes.",
				ValueEstimate:   "We estimate your birthday is worth about €4 a year to Demo Shop.",
				ValueMethod:     "The average extra margin from orders placed with birthday codes last year, minus the cost of the discounts, divided by the number of members.",
			}},
			"es": {Title: "Regalo de cumpleaños", Reward: "15% de descuento en todo, válido 30 días desde tu cumpleaños", Notice: offers.Notice{
				Summary:         "Dinos el mes y el día de tu cumpleaños y te enviamos por correo un código del 15% de descuento en tu cumpleaños.",
				MaterialTerms:   "Un código al año, válido 30 días desde tu cumpleaños, para un pedido y no acumulable. Guardamos tu cumpleaños solo mientras el regalo de cumpleaños esté activado.",
				HowToOptIn:      "Indica tu cumpleaños en esta tarjeta y elige «Sí, me apunto».",
				RightToWithdraw: "Puedes dejarlo cuando quieras desactivando «Regalo de cumpleaños» en tus preferencias. Borramos tu cumpleaños al momento y no enviamos más códigos.",
				ValueEstimate:   "Calculamos que tu cumpleaños vale unos 4 € al año para Demo Shop.",
				ValueMethod:     "El margen adicional medio de los pedidos con códigos de cumpleaños del año pasado, menos el coste de los descuentos, dividido entre el número de miembros.",
			}},
			"de": {Title: "Geburtstagsgeschenk", Reward: "15 % Rabatt auf alles, 30 Tage ab deinem Geburtstag gültig", Notice: offers.Notice{
				Summary:         "Verrate uns Monat und Tag deines Geburtstags und wir schicken dir an deinem Geburtstag einen Code über 15 % Rabatt.",
				MaterialTerms:   "Ein Code pro Jahr, 30 Tage ab deinem Geburtstag gültig, für eine Bestellung, nicht kombinierbar. Wir speichern deinen Geburtstag nur, solange das Geburtstagsgeschenk eingeschaltet ist.",
				HowToOptIn:      "Gib auf dieser Karte deinen Geburtstag an und wähle „Ja, mitmachen“.",
				RightToWithdraw: "Du kannst jederzeit aufhören, indem du „Geburtstagsgeschenk“ in deinen Einstellungen ausschaltest. Dann löschen wir deinen Geburtstag sofort und schicken keine Codes mehr.",
				ValueEstimate:   "Wir schätzen, dass dein Geburtstag für Demo Shop etwa 4 € im Jahr wert ist.",
				ValueMethod:     "Die durchschnittliche Zusatzmarge aus Bestellungen mit Geburtstagscodes im letzten Jahr, abzüglich der Rabatte, geteilt durch die Zahl der Mitglieder.",
			}},
			"fr": {Title: "Cadeau d'anniversaire", Reward: "15 % de réduction sur tout, valable 30 jours à partir de votre anniversaire", Notice: offers.Notice{
				Summary:         "Indiquez-nous le mois et le jour de votre anniversaire et recevez par e-mail un code de 15 % de réduction le jour de votre anniversaire.",
				MaterialTerms:   "Un code par an, valable 30 jours à partir de votre anniversaire, pour une commande, non cumulable. Nous ne gardons votre anniversaire que tant que le cadeau d'anniversaire est activé.",
				HowToOptIn:      "Indiquez votre anniversaire sur cette carte et choisissez « Oui, je participe ».",
				RightToWithdraw: "Vous pouvez arrêter à tout moment en désactivant « Cadeau d'anniversaire » dans vos préférences. Nous effaçons alors aussitôt votre anniversaire et n'envoyons plus de codes.",
				ValueEstimate:   "Nous estimons que votre anniversaire vaut environ 4 € par an pour Demo Shop.",
				ValueMethod:     "La marge supplémentaire moyenne des commandes passées avec un code d'anniversaire l'an dernier, moins le coût des réductions, divisée par le nombre de membres.",
			}},
		},
	}
}

// Recipients are who the demo merchant says receives its shoppers' data.
func Recipients() []recipients.Recipient {
	return []recipients.Recipient{
		{Name: "Mailer Ltd", Role: recipients.RoleProcessor, Purposes: []string{"birthday_reward", "newsletter"}, Country: "IE"},
		{Name: "Partner Brands GmbH", Role: recipients.RolePartner, Purposes: []string{"partner_sharing"}, Country: "DE"},
	}
}

// seedRecipients declares the demo's recipients, once.
func (s *Seeder) seedRecipients(ctx context.Context) error {
	if s.Recipients == nil {
		return nil
	}
	return s.seedOnce(ctx, Slug+"/recipients", func(merchantID string) error {
		_, err := s.Recipients.Put(ctx, merchantID, Recipients())
		return err
	})
}

// ConsentMode is the demo's Google Consent Mode map: ads need the partner
// purpose, analytics and personalization the recommendations.
func ConsentMode() map[string][]string {
	return map[string][]string{
		"ad_storage": {"partner_sharing"}, "ad_user_data": {"partner_sharing"}, "ad_personalization": {"partner_sharing"},
		"analytics_storage": {"recommendations"}, "personalization_storage": {"recommendations"},
	}
}

// seedConsentMode sets the demo's Consent Mode map, once, keeping the
// widget's origins.
func (s *Seeder) seedConsentMode(ctx context.Context) error {
	return s.seedOnce(ctx, Slug+"/consent-mode", func(merchantID string) error {
		m, err := s.Merchants.Store.Merchant(ctx, merchantID)
		if err != nil {
			return err
		}
		var keys []string
		for _, p := range Purposes() {
			keys = append(keys, p.Key)
		}
		_, err = s.Merchants.SetWidgetSettings(ctx, merchantID, merchants.WidgetSettings{AllowedOrigins: m.AllowedOrigins, ConsentMode: ConsentMode()}, keys)
		return err
	})
}

// seedStaff makes Owner the demo's owner, once: its console link is asked
// for at the console's sign-in page and lands in the outbox.
func (s *Seeder) seedStaff(ctx context.Context) error {
	if s.Staff == nil {
		return nil
	}
	return s.seedOnce(ctx, Slug+"/staff", func(merchantID string) error {
		_, err := s.Staff.Invite(ctx, merchantID, Owner, staff.Owner, staff.Operator)
		return err
	})
}

// seedAttributes declares what the demo's messages may use, once.
func (s *Seeder) seedAttributes(ctx context.Context) error {
	if s.Guard == nil {
		return nil
	}
	return s.seedOnce(ctx, Slug+"/attributes", func(merchantID string) error {
		for _, a := range Attributes() {
			a.MerchantID = merchantID
			if _, err := s.Guard.Create(ctx, a); err != nil && !apperr.Is(err, apperr.Conflict) {
				return err
			}
		}
		return nil
	})
}

// seedOnce runs seed for the demo merchant unless the seed named mark
// completed, and marks it completed after.
func (s *Seeder) seedOnce(ctx context.Context, mark string, seed func(merchantID string) error) error {
	done, err := s.Marks.Seeded(ctx, mark)
	if err != nil || done {
		return err
	}
	m, err := s.Merchants.Store.MerchantBySlug(ctx, Slug)
	if err != nil {
		return err
	}
	if err := seed(m.ID); err != nil {
		return err
	}
	return s.Marks.MarkSeeded(ctx, mark, s.Now().UTC())
}

// Attributes are the details the demo merchant's messages may use, beyond
// its volunteered fields (a birthday, a shoe size): a first name the
// shopper gave, what the shop saw (last order total, recently viewed, the
// city orders ship to), and what it guessed (an interest in baby products,
// which touches on health).
func Attributes() []guard.Attribute {
	type w struct{ label, explanation string }
	t := func(en, es, de, fr w) map[string]guard.Text {
		return map[string]guard.Text{"en": {Label: en.label, Explanation: en.explanation}, "es": {Label: es.label, Explanation: es.explanation},
			"de": {Label: de.label, Explanation: de.explanation}, "fr": {Label: fr.label, Explanation: fr.explanation}}
	}
	return []guard.Attribute{
		{Key: "first_name", Category: consent.CategoryName, Provenance: guard.Volunteered, Texts: t(
			w{"First name", "Because you told us your name"}, w{"Nombre", "Porque nos dijiste tu nombre"},
			w{"Vorname", "Weil du uns deinen Namen genannt hast"}, w{"Prénom", "Parce que vous nous avez indiqué votre prénom"})},
		{Key: "last_order_total", Category: consent.CategorySpend, Provenance: guard.Observed, Texts: t(
			w{"Last order total", "Because of your last order with us"}, w{"Importe del último pedido", "Por tu último pedido con nosotros"},
			w{"Summe der letzten Bestellung", "Wegen deiner letzten Bestellung bei uns"}, w{"Montant de la dernière commande", "En raison de votre dernière commande chez nous"})},
		{Key: "recently_viewed", Category: consent.CategoryBrowsing, Provenance: guard.Observed, Texts: t(
			w{"Recently viewed", "Because you looked at these on our site"}, w{"Vistos recientemente", "Porque los miraste en nuestra web"},
			w{"Zuletzt angesehen", "Weil du sie dir in unserem Shop angesehen hast"}, w{"Consultés récemment", "Parce que vous les avez consultés sur notre site"})},
		{Key: "city", Category: consent.CategoryLocation, Provenance: guard.Observed, Texts: t(
			w{"City", "Because your orders ship to this city"}, w{"Ciudad", "Porque tus pedidos se envían a esta ciudad"},
			w{"Stadt", "Weil deine Bestellungen in diese Stadt gehen"}, w{"Ville", "Parce que vos commandes sont livrées dans cette ville"})},
		{Key: "baby_interest", Category: "health", Provenance: guard.Inferred, Texts: t(
			w{"Interest in baby products", "Because of health products you bought from us"}, w{"Interés en productos para bebés", "Por productos de salud que nos compraste"},
			w{"Interesse an Babyprodukten", "Wegen Gesundheitsprodukten, die du bei uns gekauft hast"}, w{"Intérêt pour les produits bébé", "En raison de produits de santé achetés chez nous"})},
		{Key: "phone", Category: consent.CategoryContact, Provenance: guard.Volunteered, Identifier: true, Texts: t(
			w{"Phone number", "Because you gave us your phone number"}, w{"Teléfono", "Porque nos diste tu teléfono"},
			w{"Telefonnummer", "Weil du uns deine Telefonnummer gegeben hast"}, w{"Téléphone", "Parce que vous nous avez donné votre numéro"})},
	}
}

// seedShopper adds one shopper who signed up for the newsletter at checkout.
func (s *Seeder) seedShopper(ctx context.Context, merchantID string) error {
	email, locale, tz, rel := "alice@example.com", "en", "Europe/London", string(consent.Customer)
	if _, _, err := s.Subjects.Put(ctx, merchantID, "alice", consent.SubjectUpdate{Email: &email, Locale: &locale, TimeZone: &tz, Relationship: &rel}); err != nil {
		return err
	}
	st, err := s.Ledger.StateOf(ctx, merchantID, "alice")
	if err != nil || st.Seq > 0 {
		return err
	}
	_, err = s.Ledger.Apply(ctx, consent.Choices{MerchantID: merchantID, SubjectID: "alice", Channel: consent.ChannelImport, Actor: "seed",
		Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}})
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
			Key: "newsletter", DataCategories: []string{consent.CategoryContact, consent.CategoryName}, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Newsletter", Statement: "We email you new arrivals and sales, about twice a month."},
				"es": {Name: "Boletín", Statement: "Te enviamos por correo las novedades y rebajas, unas dos veces al mes."},
				"de": {Name: "Newsletter", Statement: "Wir schicken dir etwa zweimal im Monat Neuheiten und Angebote per E-Mail."},
				"fr": {Name: "Newsletter", Statement: "Nous vous envoyons les nouveautés et les soldes par e-mail, environ deux fois par mois."},
			},
		},
		{
			Key: "recommendations", DataCategories: []string{consent.CategoryName, consent.CategoryPurchaseHistory, consent.CategoryBrowsing, consent.CategoryPhysicalDescription, consent.CategoryLocation}, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Personal recommendations", Statement: "We use what you bought and viewed with us to suggest products you may like, on our site and in our emails."},
				"es": {Name: "Recomendaciones personales", Statement: "Usamos lo que compraste y viste con nosotros para sugerirte productos que te pueden gustar, en la web y en nuestros correos."},
				"de": {Name: "Persönliche Empfehlungen", Statement: "Wir nutzen, was du bei uns gekauft und angesehen hast, um dir passende Produkte vorzuschlagen, im Shop und in unseren E-Mails."},
				"fr": {Name: "Recommandations personnelles", Statement: "Nous utilisons vos achats et les produits consultés chez nous pour vous suggérer des articles, sur le site et dans nos e-mails."},
			},
		},
		{
			Key: "birthday_reward", DataCategories: []string{consent.CategoryDemographic, consent.CategoryContact, consent.CategoryName}, LegalBasis: consent.BasisConsent,
			Texts: map[string]consent.Text{
				"en": {Name: "Birthday reward", Statement: "Tell us your birthday and we email you 15% off on your birthday, valid for 30 days. We use your birthday for nothing else."},
				"es": {Name: "Regalo de cumpleaños", Statement: "Dinos tu cumpleaños y te enviamos un 15% de descuento el día de tu cumpleaños, válido 30 días. No usamos tu fecha para nada más."},
				"de": {Name: "Geburtstagsgeschenk", Statement: "Verrate uns deinen Geburtstag und du bekommst an deinem Geburtstag 15 % Rabatt per E-Mail, 30 Tage gültig. Für nichts anderes nutzen wir ihn."},
				"fr": {Name: "Cadeau d'anniversaire", Statement: "Donnez-nous votre date d'anniversaire et recevez 15 % de réduction le jour de votre anniversaire, valable 30 jours. Nous ne l'utilisons pour rien d'autre."},
			},
		},
		{
			Key: "partner_sharing", DataCategories: []string{consent.CategoryContact, consent.CategoryPurchaseHistory}, SaleOrShare: true, LegalBasis: consent.BasisConsent,
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
