package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
)

// TestDeletedValuesLeaveNoTraceInTheFile: the embedded store overwrites
// what it deletes (SQLite secure_delete), so an erased value is not left
// in the file's free pages for someone with a copy of the data directory.
func TestDeletedValuesLeaveNoTraceInTheFile(t *testing.T) {
	dir, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	st := storetest.OpenDir(t, dir)
	marker := "QXMARKER" + strings.Repeat("Q", 40)
	for i := range 50 {
		v := fields.Value{MerchantID: "mer_e", SubjectID: "s" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Field: "note", Purpose: marker, UpdatedAt: time.Now()}
		if err := st.PutValue(ctx, v); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteValue(ctx, v.MerchantID, v.SubjectID, v.Field); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, store.DatabaseName+".sqlite*"))
	if len(files) == 0 {
		t.Fatal("no store files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("QXMARKER")) {
			t.Fatalf("%s still holds a deleted value", filepath.Base(f))
		}
	}
}
