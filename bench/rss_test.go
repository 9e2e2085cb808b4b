package main

import "testing"

func TestParseGNUTimeMaxRSS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"plain", "4372\n", 4372, false},
		{"no newline", "988", 988, false},
		{"surrounding blanks", "\n  9932 \n\n", 9932, false},
		{"after non-zero exit", "Command exited with non-zero status 1\n984\n", 984, false},
		{"after signal", "Command terminated by signal 9\n1600\n", 1600, false},
		{"zero", "0\n", 0, false},
		{"empty", "", 0, true},
		{"blank", " \n\n", 0, true},
		{"no number", "Command terminated by signal 9\n", 0, true},
		{"unit suffix", "4372k\n", 0, true},
		{"negative", "-1\n", 0, true},
		{"two figures on a line", "4372 12\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseGNUTimeMaxRSS([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseGNUTimeMaxRSS(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseGNUTimeMaxRSS(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
