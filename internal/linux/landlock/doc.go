// Package landlock confines the sandboxed interpreter's file access with
// the Landlock LSM: read-only everywhere, execute only the interpreter,
// write only in scratch. It is the second wall behind the read-only mounts,
// and it still holds if a mount is ever left writable by mistake.
package landlock
