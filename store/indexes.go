package store

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names.
const (
	collMerchants     = "merchants"
	collSlugs         = "merchant_slugs"
	collAPIKeys       = "api_keys"
	collPurposes      = "purposes"
	collSubjects      = "subjects"
	collEvents        = "consent_events"
	collRecords       = "consent_states"
	collIdempotency   = "idempotency_keys"
	collNotices       = "notices"
	collNoticeHeads   = "notice_heads"
	collSeeds         = "seeds"
	collLinkTokens    = "signin_links"
	collLinkUses      = "signin_link_uses"
	collEndedSessions = "ended_sessions"
	collSubjectEmails = "subject_emails"
	collReceipts      = "receipts"
	collCampaigns     = "announcement_campaigns"
	collItems         = "announcements"
	collQueue         = "announcement_queue"
	collFields        = "fields"
	collDataKeys      = "subject_keys"
	collValues        = "field_values"
	collOffers        = "offers"
	collRewards       = "rewards"
	collRewardCodes   = "reward_codes"
	collRedemptions   = "reward_redemptions"
	collSlots         = "ledger_slots"
	collLeases        = "job_leases"
	collEndpoints     = "webhook_endpoints"
	collDeliveries    = "webhook_deliveries"
	collAttempts      = "webhook_attempts"
	collReplays       = "webhook_replays"
	collExports       = "exports"
	collExportChunks  = "export_chunks"
	collNotes         = "webhook_notes"
	collAttributes    = "attributes"
	collAccessCounts  = "access_counts"
	collRecipients    = "recipients"
	collErasures      = "erasures"
	// collRequests and collSubjectRequests hold shoppers' requests about
	// data held elsewhere, by merchant and by subject.
	collRequests        = "requests"
	collSubjectRequests = "subject_requests"
	// collSubjectReceipts lists each subject's receipts.
	collSubjectReceipts = "subject_receipts"
	// collExportDays lists each merchant's exports by the day asked for.
	collExportDays = "export_days"
	// collStaff holds each merchant's console staff, collAudit what they
	// changed (append-only); both keyed "<merchant>/<id>".
	collStaff = "staff"
	collAudit = "staff_audit"
	// collRollups holds each merchant's analytics, under the counters'
	// format: its rollup state "<merchant>/f1/~state", totals ".../~totals",
	// a document per purpose and month ".../<purpose>/<2006-01>" and per
	// material notice version ".../~notice/<n>", all read by _id.
	collRollups = "stats_rollups"
	// collBannerReach holds the anonymous banner counts, a document per
	// merchant and month "<merchant>/<2006-01>", read by _id.
	collBannerReach = "banner_reach"
	// collOfferPurposes lists, per merchant "<merchant>", the purposes its
	// offers grant: what the rollups follow without listing offers.
	collOfferPurposes = "offer_purposes"
)

// collectionIndexes declares every collection with its secondary indexes.
// Hot paths read by _id; these serve MongoDB listings and admin work.
func collectionIndexes() map[string][]mongo.IndexModel {
	return map[string][]mongo.IndexModel{
		collMerchants: nil,
		collSlugs:     nil,
		collAPIKeys: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "created_at", Value: 1}}},
		},
		collPurposes: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "key", Value: 1}}, Options: options.Index().SetUnique(true)},
		},
		collSubjects: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "subject_id", Value: 1}}, Options: options.Index().SetUnique(true)},
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "email", Value: 1}}},
		},
		// Events, journal and feed entries are all read by _id (see journal.go).
		collEvents: nil,
		collRecords: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}}},
		},
		collSlots:  nil,
		collLeases: nil,
		collEndpoints: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "created_at", Value: 1}}},
		},
		collDeliveries: nil,
		collAttempts:   nil,
		collReplays:    nil,
		collExports: {
			{Keys: bson.D{{Key: "status", Value: 1}, {Key: "created_at", Value: 1}}},
		},
		collExportChunks: nil,
		collNotes:        nil,
		collIdempotency: {
			{Keys: bson.D{{Key: "created_at", Value: 1}}},
		},
		collNotices: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "number", Value: 1}}, Options: options.Index().SetUnique(true)},
		},
		collNoticeHeads: nil,
		collSeeds:       nil,
		collLinkTokens: {
			{Keys: bson.D{{Key: "expires_at", Value: 1}}},
		},
		collLinkUses: nil,
		collCampaigns: {
			{Keys: bson.D{{Key: "built", Value: 1}}},
		},
		collItems: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "version", Value: 1}, {Key: "state", Value: 1}}},
		},
		collQueue: {
			{Keys: bson.D{{Key: "next_at", Value: 1}}},
		},
		collEndedSessions: nil,
		collSubjectEmails: nil,
		collFields: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "key", Value: 1}}},
		},
		collDataKeys: nil,
		collAttributes: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "key", Value: 1}}},
		},
		// Read by _id: one document per merchant.
		collRecipients: nil,
		// Read by _id: one document per subject and day.
		collAccessCounts: nil,
		collErasures:     nil,
		// Read by _id ranges: a merchant's in the order received, a subject's.
		collRequests:        nil,
		collSubjectRequests: nil,
		collSubjectReceipts: nil,
		collExportDays:      nil,
		collStaff:           nil,
		collAudit:           nil,
		collRollups:         nil,
		collBannerReach:     nil,
		collOfferPurposes:   nil,
		collValues: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "field", Value: 1}}},
		},
		collOffers: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "key", Value: 1}}},
		},
		collRewards: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "subject_id", Value: 1}}},
			{Keys: bson.D{{Key: "mail", Value: 1}, {Key: "mail_next_at", Value: 1}}},
		},
		collRewardCodes: nil,
		collRedemptions: nil,
		collReceipts: {
			{Keys: bson.D{{Key: "merchant_id", Value: 1}, {Key: "subject_id", Value: 1}, {Key: "created_at", Value: 1}}},
		},
	}
}

// obsoleteIndexes are indexes an earlier version created that this one must
// not keep: the unique (merchant, subject, seq) index of events would refuse
// every journal and feed entry after the first (they have no subject).
func obsoleteIndexes() map[string][]string {
	return map[string][]string{
		collEvents:  {"merchant_id_1_subject_id_1_seq_1", "recorded_at_1"},
		collRecords: {"updated_at_1"},
	}
}
