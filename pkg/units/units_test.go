package units

import "testing"

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1048576", 1048576, false}, {"100b", 100, false}, {"512k", 512 << 10, false}, {"512K", 512 << 10, false},
		{"64m", 64 << 20, false}, {"64MB", 64 << 20, false}, {"64MiB", 64 << 20, false}, {"1g", 1 << 30, false},
		{"1.5g", 3 << 29, false}, {"2t", 2 << 40, false}, {"0", 0, false},
		{"", 0, true}, {"m", 0, true}, {"-1m", 0, true}, {"64x", 0, true}, {"lots", 0, true}, {"1e30g", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
