// Package defaults fills the unset fields of a configuration: the one copy
// of "if this field is unset, use the default" that each package's
// withDefaults would otherwise spell out as an if statement per field.
// Which value counts as unset is the caller's choice, by the function it
// calls: IfNotPositive where a negative value means nothing either (a
// size, a rate, a timeout), IfZero where a negative value has a meaning of
// its own (a documented "no bound") or the type has no sign (a reader).
//
// Standard library only, so that any package, the router core included,
// can use it.
package defaults

// number is the types IfNotPositive compares with zero.
type number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~float32 | ~float64
}

// IfNotPositive sets *v to def when *v is zero or negative.
func IfNotPositive[T number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// IfZero sets *v to def when *v is its type's zero value (0, nil, "").
func IfZero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
