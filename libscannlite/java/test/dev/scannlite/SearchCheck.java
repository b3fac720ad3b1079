package dev.scannlite;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;

/**
 * The Java side of tests/test_native_java.py, on the host JVM through the JNI binding.
 *
 * <pre>
 * search FILE QUERIES.f32 K [LEAVES]   the CLI's search lines (query rank id %a-distance hex|-)
 * filter FILE QUERIES.f32 K LEAVES ALLOW   the same for a filtered search (ALLOW: one id a line)
 * checks FILE QUERIES.f32 K            the binding's contract (buffers, errors, close, ...)
 * normalize QUERIES.f32 DIM             each query after Searcher.l2Normalize, as float bits (%08x)
 * batch                                 search/filter commands from stdin, one a line, arguments
 *                                       separated by tabs; each one's output (or its "error: ..."
 *                                       line) followed by a line "--- end" (one JVM for many runs)
 * </pre>
 *
 * Failures print one "error: ..." line on stderr and exit 1, as scannlite-cli does.
 */
public final class SearchCheck {
    private SearchCheck() {}

    public static void main(String[] args) {
        try {
            if (args.length == 1 && args[0].equals("batch")) {
                batch();
            } else if (isSearch(args)) {
                System.out.print(run(args));
            } else if (args.length == 3 && args[0].equals("normalize")) {
                normalize(Paths.get(args[1]), Integer.parseInt(args[2]));
            } else if (args.length == 4 && args[0].equals("checks")) {
                checks(Paths.get(args[1]), Paths.get(args[2]), Integer.parseInt(args[3]));
            } else {
                System.err.println("error: usage: SearchCheck search FILE QUERIES.f32 K [LEAVES] | "
                        + "filter FILE QUERIES.f32 K LEAVES ALLOW | checks FILE QUERIES.f32 K");
                System.exit(2);
            }
        } catch (ScannliteException | IOException | IllegalArgumentException e) {
            System.out.flush();
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    static boolean isSearch(String[] args) {
        return (args.length == 4 || args.length == 5) && args[0].equals("search")
                || args.length == 6 && args[0].equals("filter");
    }

    /** The output of one search or filter command. */
    static String run(String[] args) throws IOException {
        Path file = Paths.get(args[1]);
        Path queries = Paths.get(args[2]);
        int k = Integer.parseInt(args[3]);
        if (args[0].equals("filter")) {
            return search(file, queries, k, Integer.parseUnsignedInt(args[4]), allowList(Paths.get(args[5])));
        }
        return search(file, queries, k, args.length > 4 ? Integer.parseUnsignedInt(args[4]) : 0, null);
    }

    static void batch() throws IOException {
        java.io.BufferedReader in = new java.io.BufferedReader(
                new java.io.InputStreamReader(System.in, java.nio.charset.StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] args = line.split("\t");
            if (!isSearch(args)) {
                throw new IllegalArgumentException("batch: not a search or filter command: " + line);
            }
            try {
                out.append(run(args));
            } catch (ScannliteException | IllegalArgumentException e) {
                out.append("error: ").append(e.getMessage()).append('\n');
            }
            out.append("--- end\n");
        }
        System.out.print(out);
    }

    /** A direct buffer holding the file after {@code pad} junk bytes, positioned at the file. */
    static ByteBuffer directCopy(Path file, int pad) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.allocateDirect(pad + bytes.length);
        for (int i = 0; i < pad; i++) {
            buf.put((byte) 0xA5);
        }
        buf.put(bytes);
        buf.position(pad);
        return buf;
    }

    static float[][] queries(Path file, int dim) throws IOException {
        byte[] raw = Files.readAllBytes(file);
        if (dim <= 0 || raw.length % (4 * dim) != 0) {
            throw new IllegalArgumentException(file + " holds " + raw.length
                    + " bytes, not a whole number of queries of the index's dimension");
        }
        ByteBuffer in = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        float[][] out = new float[raw.length / (4 * dim)][dim];
        for (float[] q : out) {
            for (int j = 0; j < dim; j++) {
                q[j] = in.getFloat();
            }
        }
        return out;
    }

    /** C's printf("%a", (double) f) as glibc writes it, e.g. 0x1.8p+1, 0x0p+0, -0x1p-3. */
    static String cHex(float f) {
        if (Float.isNaN(f)) {
            return (Float.floatToRawIntBits(f) < 0) ? "-nan" : "nan";
        }
        if (Float.isInfinite(f)) {
            return f > 0 ? "inf" : "-inf";
        }
        if (f == 0.0f) {
            return (Float.floatToRawIntBits(f) < 0) ? "-0x0p+0" : "0x0p+0";
        }
        String s = Double.toHexString(f); // [-]0x1.<hex>p<exp>: a float is never a subnormal double
        boolean negative = s.startsWith("-");
        int p = s.indexOf('p');
        String fraction = s.substring(s.indexOf('.') + 1, p);
        int exp = Integer.parseInt(s.substring(p + 1));
        return (negative ? "-" : "") + "0x1" + (fraction.equals("0") ? "" : "." + fraction) + "p"
                + (exp >= 0 ? "+" : "") + exp;
    }

    static String hex(byte[] bytes) {
        if (bytes.length == 0) {
            return "-";
        }
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
        }
        return sb.toString();
    }

    static long[] allowList(Path file) throws IOException {
        return Files.readAllLines(file).stream().map(String::trim).filter(line -> !line.isEmpty())
                .mapToLong(Long::parseUnsignedLong).toArray();
    }

    static String search(Path file, Path queryFile, int k, int leaves, long[] allow) throws IOException {
        // A direct copy behind 13 junk bytes: the binding must honour the buffer's position.
        Searcher opened;
        try {
            opened = Searcher.open(directCopy(file, 13));
        } catch (ScannliteException e) {
            throw new ScannliteException(e.status(), file + ": " + e.getMessage()); // as the CLI words it
        }
        try (Searcher searcher = opened) {
            float[][] qs = queries(queryFile, searcher.dimension());
            StringBuilder out = new StringBuilder();
            for (int i = 0; i < qs.length; i++) {
                SearchResult[] results = allow == null ? searcher.search(qs[i], k, leaves)
                        : searcher.search(qs[i], k, leaves, allow);
                for (int r = 0; r < results.length; r++) {
                    out.append(i).append(' ').append(r).append(' ').append(Long.toUnsignedString(results[r].id()))
                            .append(' ').append(cHex(results[r].distance())).append(' ')
                            .append(hex(results[r].metadata())).append('\n');
                }
            }
            return out.toString();
        }
    }

    static void normalize(Path queryFile, int dim) throws IOException {
        StringBuilder out = new StringBuilder();
        for (float[] q : queries(queryFile, dim)) {
            Searcher.l2Normalize(q);
            for (int j = 0; j < q.length; j++) {
                out.append(j == 0 ? "" : " ").append(String.format("%08x", Float.floatToRawIntBits(q[j])));
            }
            out.append('\n');
        }
        System.out.print(out);
    }

    private static int failures = 0;

    private static void check(boolean ok, String what) {
        System.out.println((ok ? "ok " : "FAIL ") + what);
        if (!ok) {
            failures++;
        }
    }

    private static void expectThrows(Class<? extends Throwable> type, Runnable action, String what) {
        try {
            action.run();
            check(false, what + " (nothing thrown)");
        } catch (Throwable t) {
            check(type.isInstance(t) && t.getMessage() != null && !t.getMessage().isEmpty()
                    && t.getMessage().indexOf('\n') < 0, what + " -> " + t.getClass().getSimpleName() + ": " + t.getMessage());
        }
    }

    static void checks(Path file, Path queryFile, int k) throws IOException {
        ByteBuffer mapped;
        SearchResult[] viaMap;
        float[] first;
        // 1. A mapped file and a direct copy give the same results; the mapping is zero copy.
        try (Searcher s = Searcher.open(file)) {
            first = queries(queryFile, s.dimension())[0];
            viaMap = s.search(first, k);
            check(viaMap.length > 0 && viaMap.length <= k, "mapped search returns 1..k results (" + viaMap.length + ")");
            mapped = s.buffer();
            check(mapped.isDirect() && mapped.remaining() == Files.size(file), "the Searcher keeps the whole mapped file");
            for (int r = 1; r < viaMap.length; r++) {
                check(viaMap[r - 1].distance() <= viaMap[r].distance(), "ascending distance at rank " + r);
            }
            // 2. metadata(id) equals the result's metadata bytes; userInfo answers.
            for (SearchResult r : viaMap) {
                byte[] md;
                try {
                    md = s.metadata(r.id());
                } catch (ScannliteException e) {
                    md = new byte[0];
                }
                check(Arrays.equals(md, r.metadata()), "metadata(" + r.id() + ") equals the result's bytes");
            }
            System.out.println("userinfo " + hex(s.userInfo()));
            // 3. Library errors arrive as ScannliteException with the library's one-line message.
            expectThrows(ScannliteException.class, () -> s.search(new float[s.dimension() + 1], k), "wrong query dimension");
            expectThrows(ScannliteException.class, () -> s.search(first, 0), "k = 0");
            try {
                s.search(first, 0);
            } catch (ScannliteException e) {
                check(e.status() == ScannliteException.ARGUMENT, "k = 0 is an ARGUMENT error (status " + e.status() + ")");
            }
            expectThrows(ScannliteException.class, () -> s.metadata(s.size() + 5), "metadata of an id past the end");
            // 4. A huge k: at most size results, no huge allocation.
            check(s.search(first, Integer.MAX_VALUE).length <= s.size(), "k = MAX_VALUE returns at most size results");
        }
        try (Searcher s = Searcher.open(directCopy(file, 0))) {
            check(Arrays.equals(s.search(first, k), viaMap), "a direct copy searches like the mapped file");
            s.close();
            s.close(); // idempotent
            expectThrows(IllegalStateException.class, () -> s.search(first, k), "search after close");
        }
        // 5. Buffers the binding must refuse.
        expectThrows(IllegalArgumentException.class, () -> Searcher.open(ByteBuffer.wrap(new byte[64])), "a heap buffer");
        expectThrows(ScannliteException.class, () -> Searcher.open(ByteBuffer.allocateDirect(0)), "an empty buffer");
        ByteBuffer junk = ByteBuffer.allocateDirect(100);
        junk.put("this is not a bundle".getBytes(StandardCharsets.US_ASCII));
        junk.clear();
        expectThrows(ScannliteException.class, () -> Searcher.open(junk), "a buffer of junk");
        ByteBuffer cut = directCopy(file, 0);
        cut.limit(cut.limit() / 2);
        expectThrows(ScannliteException.class, () -> Searcher.open(cut), "a file cut in half (buffer limit honoured)");
        try {
            Searcher.open(junk).close();
        } catch (ScannliteException e) {
            check(e.status() == ScannliteException.FORMAT, "junk is a FORMAT error (status " + e.status() + ")");
        }
        // 6. l2Normalize is the library's: unit length, and a zero vector is left as it is.
        float[] v = first.clone();
        for (int j = 0; j < v.length; j++) {
            v[j] = v[j] * 3.0f + 0.25f;
        }
        Searcher.l2Normalize(v);
        double norm = 0;
        for (float x : v) {
            norm += (double) x * x;
        }
        check(Math.abs(norm - 1.0) < 1e-5, "l2Normalize gives unit length (" + norm + ")");
        float[] zero = new float[8];
        Searcher.l2Normalize(zero);
        check(Arrays.equals(zero, new float[8]), "l2Normalize leaves a zero vector as it is");
        check(!Searcher.version().isEmpty(), "version " + Searcher.version());
        // 7. Many threads search one Searcher at once and agree with the single-thread results.
        try (Searcher s = Searcher.open(file)) {
            Thread[] threads = new Thread[4];
            boolean[] same = new boolean[threads.length];
            for (int t = 0; t < threads.length; t++) {
                final int slot = t;
                threads[t] = new Thread(() -> {
                    boolean ok = true;
                    for (int i = 0; i < 200; i++) {
                        ok &= Arrays.equals(s.search(first, k), viaMap);
                    }
                    same[slot] = ok;
                });
                threads[t].start();
            }
            for (Thread t : threads) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            boolean all = true;
            for (boolean b : same) {
                all &= b;
            }
            check(all, "4 threads x 200 searches agree with one thread");
        }
        System.out.println(failures == 0 ? "all checks passed" : failures + " checks failed");
        if (failures != 0) {
            System.exit(1);
        }
    }
}
