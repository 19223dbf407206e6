import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.net.InetAddress;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/** What a service needs of its base image: name resolution, zip files, a UTF-8 locale. */
public class Probe {
    public static void main(String[] args) throws Exception {
        System.out.println("localhost=" + InetAddress.getByName("localhost").getHostAddress());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            zip.putNextEntry(new ZipEntry("hello.txt"));
            zip.write("h\u00e9llo".getBytes(StandardCharsets.UTF_8));
            zip.closeEntry();
        }
        File file = File.createTempFile("probe", ".zip");
        try (FileOutputStream out = new FileOutputStream(file)) {
            out.write(bytes.toByteArray());
        }
        try (ZipFile zip = new ZipFile(file)) {
            byte[] content = zip.getInputStream(zip.getEntry("hello.txt")).readAllBytes();
            System.out.println("zip=" + new String(content, StandardCharsets.UTF_8).length() + " chars");
        }
        System.out.println("locale=" + Locale.getDefault());
        System.out.println("charset=" + Charset.defaultCharset());
        System.out.println("file.encoding=" + System.getProperty("file.encoding"));
    }
}
