package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/store/storetest"
)

// queryPlan asks SQLite how it answers the embedded server's {_id: v} lookup
// on the collection's table.
func queryPlan(t *testing.T, dir, collection string) string {
	t.Helper()
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: filepath.Join(dir, "fineline.sqlite"), RawQuery: "mode=ro"}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, collection).Scan(&table); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"x"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

func TestEveryCollectionAnswersIDLookupsFromAnIndex(t *testing.T) {
	dir := t.TempDir()
	s := storetest.OpenDir(t, dir)
	names, err := s.Database().ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("only %d collections: %v", len(names), names)
	}
	for _, name := range names {
		plan := queryPlan(t, dir, name)
		if !strings.Contains(plan, "USING INDEX") || strings.HasPrefix(plan, "SCAN") {
			t.Errorf("%s: {_id} lookups scan the table: %s", name, plan)
		}
	}
}

// TestPointReadsStayFlatAsCollectionsGrow times {_id} lookups at 1k and
// 50k documents: with the index the cost barely moves; as a scan it grows
// fifty-fold.
func TestPointReadsStayFlatAsCollectionsGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 50,000 documents")
	}
	s := storetest.Open(t)
	ctx := context.Background()
	coll := s.Database().Collection("consent_states")
	insert := func(from, to int) {
		t.Helper()
		for lo := from; lo < to; lo += 5000 {
			docs := make([]any, 0, 5000)
			for i := lo; i < min(lo+5000, to); i++ {
				docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("mer_x/s%06d", i)}, {Key: "seq", Value: 1}})
			}
			if _, err := coll.InsertMany(ctx, docs); err != nil {
				t.Fatal(err)
			}
		}
	}
	lookup := func(n int) time.Duration {
		t.Helper()
		const reads = 300
		// Best of three rounds, to keep a noisy neighbour out of the figure.
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			for i := range reads {
				var d bson.M
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("mer_x/s%06d", (i*7919)%n)}}).Decode(&d); err != nil {
					t.Fatal(err)
				}
			}
			best = min(best, time.Since(start)/reads)
		}
		return best
	}
	insert(0, 1000)
	small := lookup(1000)
	insert(1000, 50000)
	large := lookup(50000)
	ratio := float64(large) / float64(small)
	t.Logf("point read: %v at 1k documents, %v at 50k (ratio %.2f)", small, large, ratio)
	if ratio > 4 {
		t.Fatalf("point reads grew %.1f-fold from 1k to 50k documents: they are scans again", ratio)
	}
}
