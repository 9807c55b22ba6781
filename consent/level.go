package consent

import "github.com/fineline/fineline/apperr"

// Level is a subject's answer to "how personal may the merchant's messages
// be?": one control with three levels, recorded in the ledger like any choice.
type Level string

// Privacy levels.
const (
	// LevelGeneral keeps messages general: nothing about the subject
	// beyond their name.
	LevelGeneral Level = "general"
	// LevelVolunteered uses what the subject told the merchant (volunteered
	// details) and nothing observed or inferred: the default.
	LevelVolunteered Level = "volunteered"
	// LevelFull also uses what the subject bought and browsed; never a
	// sensitive category unless they switched that purpose on themselves.
	LevelFull Level = "full"
)

// DefaultLevel is the level of a subject who never chose one.
const DefaultLevel = LevelVolunteered

// Levels lists the levels from the least personal to the most.
func Levels() []Level { return []Level{LevelGeneral, LevelVolunteered, LevelFull} }

// Valid reports whether l is one of the levels.
func (l Level) Valid() bool { return l == LevelGeneral || l == LevelVolunteered || l == LevelFull }

// ParseLevel checks a level given by a client.
func ParseLevel(s string) (Level, error) {
	if l := Level(s); l.Valid() {
		return l, nil
	}
	return "", apperr.New(apperr.Invalid, "privacy level must be general, volunteered or full").WithDetail(CodeInvalidLevel)
}
