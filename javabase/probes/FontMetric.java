import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.GraphicsEnvironment;
import java.awt.image.BufferedImage;

/**
 * javabase's probe for `fonts:`: what headless AWT code (PDFs, reports, captchas) does first.
 * It measures and draws a string with the default sans-serif font and prints the physical
 * font families the JVM found (through fontconfig), the string's width and the pixels drawn.
 * Without fontconfig or a font, the JVM throws here (FontConfiguration, "Fontconfig head is
 * null") and the probe exits 1. Compiled for Java 8 so that every JRE runs it:
 * javac --release 8 -d javabase/probes javabase/probes/FontMetric.java
 */
public class FontMetric {
    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        String[] families = GraphicsEnvironment.getLocalGraphicsEnvironment().getAvailableFontFamilyNames();
        StringBuilder physical = new StringBuilder();
        for (String family : families) {
            if (!family.startsWith("Dialog") && !family.equals("Monospaced") && !family.equals("SansSerif")
                    && !family.equals("Serif")) {
                physical.append(physical.length() == 0 ? "" : ",").append(family);
            }
        }
        BufferedImage image = new BufferedImage(200, 40, BufferedImage.TYPE_INT_RGB);
        Graphics2D graphics = image.createGraphics();
        graphics.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 20));
        FontMetrics metrics = graphics.getFontMetrics();
        graphics.drawString("javabase", 5, 30);
        graphics.dispose();
        int drawn = 0;
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                if ((image.getRGB(x, y) & 0xffffff) != 0) {
                    drawn++;
                }
            }
        }
        System.out.println("families=" + physical);
        System.out.println("width=" + metrics.stringWidth("javabase"));
        System.out.println("height=" + metrics.getHeight());
        System.out.println("drawn=" + drawn);
    }
}
