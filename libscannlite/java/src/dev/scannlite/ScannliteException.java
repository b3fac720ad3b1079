package dev.scannlite;

/**
 * A failure reported by libscannlite: its status code and its one-line message, unchanged, so
 * an app shows the same cause the C library and its CLI name (docs/android.md).
 */
public final class ScannliteException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** scannlite_status values (scannlite.h). */
    public static final int ARGUMENT = 1;
    public static final int FORMAT = 2;
    public static final int UNSUPPORTED = 3;
    public static final int MEMORY = 4;
    public static final int NOT_FOUND = 5;

    private final int status;

    public ScannliteException(int status, String message) {
        super(message);
        this.status = status;
    }

    /** The library's scannlite_status (ARGUMENT, FORMAT, UNSUPPORTED, MEMORY or NOT_FOUND). */
    public int status() {
        return status;
    }
}
