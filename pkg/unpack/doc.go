// Package unpack turns an image's layers into committed snapshots named by
// their chain IDs, unpacking each layer once however many images share it
// and however many unpacks run at the same time.
//
// Internal to xstack; no API stability.
package unpack
