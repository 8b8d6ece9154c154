/* see liability.h: the incident as an SVG timeline */
#include "src/liability/liability.h"

#include "src/base/err.h"

#include <string.h>

#define SVG_W 1000
#define PLOT_LEFT 180
#define PLOT_RIGHT 40
#define LABEL_TOP 44
#define LANE_TOP 112
#define LANE_H 72
#define R_MIN 4.0
#define R_MAX 20.0

/* Class colours: reds/greys where the cardholder bears all, oranges for the caps, greens/blues
 * where the issuer bears it. */
static const char *const CLASS_COLOUR[KV_LIABILITY_CLASS_COUNT] = {
    [KV_LIABILITY_FRAUD] = "#7b241c",
    [KV_LIABILITY_BARRED] = "#616a6b",
    [KV_LIABILITY_INTENTIONAL_BREACH] = "#c0392b",
    [KV_LIABILITY_NOT_BOOKED] = "#117a65",
    [KV_LIABILITY_AFTER_NOTIFICATION] = "#2e86c1",
    [KV_LIABILITY_ISSUER_STAFF] = "#7d3c98",
    [KV_LIABILITY_NO_CHANNEL] = "#1abc9c",
    [KV_LIABILITY_PAYEE_KNEW] = "#a9cce3",
    [KV_LIABILITY_UNDETECTABLE] = "#76d7c4",
    [KV_LIABILITY_SCA_NOT_REQUIRED] = "#1f618d",
    [KV_LIABILITY_UNAUTHENTICATED] = "#58d68d",
    [KV_LIABILITY_CREDENTIAL_DISCLOSED] = "#e74c3c",
    [KV_LIABILITY_NEGLIGENT] = "#e67e22",
    [KV_LIABILITY_CREDENTIAL_USED] = "#f4d03f",
};

/* Write s with the five XML special characters escaped (the decoder keeps control
 * characters out of every string). */
static void xml_text(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if ((unsigned char)*s < 0x20)
                fputc('?', f); /* never reached through the decoder; keeps the XML well-formed */
            else
                fputc(*s, f);
        }
    }
}

/* Square root by Newton's method (no libm needed); x >= 0. */
static double root(double x)
{
    double g = x > 1.0 ? x : 1.0;
    if (x <= 0.0)
        return 0.0;
    for (int i = 0; i < 64; i++) {
        double n = 0.5 * (g + x / g);
        if (n == g)
            break;
        g = n;
    }
    return g;
}

struct scale {
    int64_t t0;
    double span;
    double width;
};

static double xpos(const struct scale *s, int64_t t)
{
    return PLOT_LEFT + (double)(t - s->t0) / s->span * s->width;
}

static void short_time(int64_t ms, char out[40])
{
    char iso[32];
    kv_liability_time_format(ms, iso);
    snprintf(out, 40, "%.10s %.5s", iso, iso + 11);
}

static void event_line(FILE *f, const struct scale *s, int64_t t, int k, double bottom,
                       const char *cls, const char *colour, const char *dash, const char *label,
                       const char *label2)
{
    char when[40];
    double x = xpos(s, t);
    int right = x > SVG_W - 260; /* labels near the right edge run leftwards */
    short_time(t, when);
    fprintf(f,
            "  <g class=\"event %s\">\n"
            "    <line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"1.5\"%s%s%s/>\n"
            "    <text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"%s\" text-anchor=\"%s\">",
            cls, x, LABEL_TOP + 13 * (k % 5) - 10, x, bottom, colour,
            dash != NULL ? " stroke-dasharray=\"" : "", dash != NULL ? dash : "",
            dash != NULL ? "\"" : "", right ? x - 3 : x + 3, LABEL_TOP + 13 * (k % 5), colour,
            right ? "end" : "start");
    xml_text(f, label);
    if (label2 != NULL) {
        fputc(' ', f);
        xml_text(f, label2);
    }
    fputs(" ", f);
    xml_text(f, when);
    fputs("</text>\n  </g>\n", f);
}

/* see liability.h */
int kv_liability_write_svg(FILE *f, const struct kv_liability_case *c,
                           const struct kv_liability_result *r, enum kv_liability_lang lang)
{
    int en = lang == KV_LIABILITY_LANG_EN;
    struct scale sc;
    int64_t lo, hi, max_amount = 0;
    size_t lanes = c->n_cards > 0 ? c->n_cards : 1;
    double axis_y = LANE_TOP + (double)lanes * LANE_H + 8;
    int used[KV_LIABILITY_CLASS_COUNT] = {0};
    int n_used = 0, k = 0;
    unsigned lane_count[KV_LIABILITY_CARDS_MAX] = {0}; /* marks drawn per lane so far */
    double legend_y, height;
    char a[48], b[48], d[48], id[KV_LIABILITY_ID_MAX + 1], when[40];

    /* the time range covers every mark and every line */
    lo = hi = c->discovered_at;
#define WIDEN(t)                                                                                   \
    do {                                                                                           \
        if ((t) < lo)                                                                              \
            lo = (t);                                                                              \
        if ((t) > hi)                                                                              \
            hi = (t);                                                                              \
    } while (0)
    WIDEN(c->objection_at);
    if (c->notified)
        WIDEN(c->notified_at);
    for (size_t i = 0; i < c->n_cards; i++)
        if (c->cards[i].blocked)
            WIDEN(c->cards[i].blocked_at);
    for (size_t i = 0; i < c->n_txns; i++) {
        WIDEN(c->txns[i].at);
        if (c->txns[i].amount > max_amount)
            max_amount = c->txns[i].amount;
        if (!used[r->txns[i].cls]++)
            n_used++;
    }
#undef WIDEN
    sc.span = (double)(hi - lo);
    if (sc.span <= 0)
        sc.span = 3600000.0; /* one hour around a single instant */
    sc.t0 = lo - (int64_t)(sc.span * 0.05);
    sc.span *= 1.10;
    sc.width = SVG_W - PLOT_LEFT - PLOT_RIGHT;
    legend_y = axis_y + 78;
    height = legend_y + 20.0 * n_used + 16;

    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
            "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\">\n"
            "  <title>%s</title>\n"
            "  <rect x=\"0\" y=\"0\" width=\"%d\" height=\"%.0f\" fill=\"#ffffff\"/>\n"
            "  <text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n",
            SVG_W, height, SVG_W, height,
            en ? "Incident timeline (betalingsloven § 100)"
               : "Hændelsens tidslinje (betalingsloven § 100)",
            SVG_W, height,
            en ? "Incident timeline (betalingsloven § 100)"
               : "Hændelsens tidslinje (betalingsloven § 100)");

    /* card lanes */
    for (size_t i = 0; i < c->n_cards; i++) {
        double y = LANE_TOP + (double)i * LANE_H;
        kv_liability_display_id(c->cards[i].id, id);
        fprintf(f,
                "  <g class=\"lane\">\n"
                "    <rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n"
                "    <text x=\"10\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\">%s ",
                PLOT_LEFT, y, sc.width, LANE_H, i % 2 ? "#f4f6f7" : "#fbfcfc", y + LANE_H / 2.0,
                en ? "card" : "kort");
        xml_text(f, id);
        fputs("</text>\n", f);
        if (c->cards[i].credential[0] != '\0') {
            fprintf(f, "    <text x=\"10\" y=\"%.1f\" font-size=\"10\" fill=\"#555\">",
                    y + LANE_H / 2.0 + 14);
            xml_text(f, c->cards[i].credential);
            fputs("</text>\n", f);
        }
        fputs("  </g>\n", f);
    }

    /* axis with five ticks */
    fprintf(f, "  <line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
            PLOT_LEFT, axis_y, PLOT_LEFT + sc.width, axis_y);
    for (int i = 0; i <= 4; i++) {
        int64_t t = sc.t0 + (int64_t)(sc.span * i / 4.0);
        double x = xpos(&sc, t);
        short_time(t, when);
        fprintf(f,
                "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
                "  <text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"%s\">%s UTC</text>\n",
                x, axis_y, x, axis_y + 5, x, axis_y + 18,
                i == 0 ? "start" : (i == 4 ? "end" : "middle"), when);
    }

    /* vertical lines: discovery, notification, each card's block, objection */
    event_line(f, &sc, c->discovered_at, k++, axis_y, "discovered", "#1f77b4", "6,3",
               en ? "discovered" : "opdaget", NULL);
    if (c->notified)
        event_line(f, &sc, c->notified_at, k++, axis_y, "notified", "#d62728", NULL,
                   en ? "block requested" : "spærring anmodet", NULL);
    for (size_t i = 0; i < c->n_cards; i++) {
        if (!c->cards[i].blocked)
            continue;
        kv_liability_display_id(c->cards[i].id, id);
        event_line(f, &sc, c->cards[i].blocked_at, k++, axis_y, "blocked", "#ff7f0e", "2,3",
                   en ? "blocked: card" : "spærret: kort", id);
    }
    event_line(f, &sc, c->objection_at, k++, axis_y, "objection", "#9467bd", "8,3,2,3",
               en ? "objection" : "indsigelse", NULL);

    /* one mark per transaction, area proportional to the amount */
    for (size_t i = 0; i < c->n_txns; i++) {
        const struct kv_liability_txn *t = &c->txns[i];
        const struct kv_liability_txn_result *x = &r->txns[i];
        double rad = R_MIN;
        double cx = xpos(&sc, t->at);
        double cy = LANE_TOP + (double)t->card * LANE_H + LANE_H / 2.0;
        if (max_amount > 0)
            rad += (R_MAX - R_MIN) * root((double)t->amount / (double)max_amount);
        fprintf(f, "  <circle class=\"mark %s\" data-id=\"", kv_liability_class_name(x->cls));
        xml_text(f, t->id);
        fprintf(f,
                "\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.8\" "
                "stroke=\"#222\" stroke-width=\"0.8\">\n    <title>",
                cx, cy, rad, CLASS_COLOUR[x->cls]);
        xml_text(f, t->id);
        fprintf(f, ": %s, %s %s, %s %s (", kv_liability_money_format(t->amount, lang, a),
                en ? "cardholder" : "kortholder", kv_liability_money_format(x->cardholder, lang, b),
                en ? "issuer" : "udsteder", kv_liability_money_format(x->issuer, lang, d));
        xml_text(f, x->rule);
        fputs(")</title>\n  </circle>\n", f);
        /* ids alternate above and below the marks of a lane, so that neighbours stay legible */
        fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"middle\">", cx,
                t->card < KV_LIABILITY_CARDS_MAX && lane_count[t->card]++ % 2 ? cy + rad + 10
                                                                              : cy - rad - 3);
        xml_text(f, t->id);
        fputs("</text>\n", f);
    }

    /* totals */
    fprintf(f,
            "  <text class=\"totals\" x=\"10\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">",
            axis_y + 48);
    fprintf(f,
            en ? "Cardholder %s · Issuer %s · Total %s · Objection: "
               : "Kortholder %s · Udsteder %s · I alt %s · Indsigelse: ",
            kv_liability_money_format(r->cardholder, lang, a),
            kv_liability_money_format(r->issuer, lang, b),
            kv_liability_money_format(r->total, lang, d));
    xml_text(f, kv_liability_objection_text(r->objection, lang));
    fputs("</text>\n", f);

    /* legend of the classes used */
    for (int cls = 0, row = 0; cls < KV_LIABILITY_CLASS_COUNT; cls++) {
        double y;
        if (!used[cls])
            continue;
        y = legend_y + 20.0 * row++;
        fprintf(
            f,
            "  <g class=\"legend\">\n"
            "    <rect x=\"10\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\" stroke=\"#222\" "
            "stroke-width=\"0.5\"/>\n"
            "    <text x=\"28\" y=\"%.1f\" font-size=\"11\">%s (",
            y - 10, CLASS_COLOUR[cls], y, kv_liability_class_name((enum kv_liability_class)cls));
        xml_text(f, kv_liability_class_rule((enum kv_liability_class)cls));
        fputs("): ", f);
        xml_text(f, kv_liability_class_text((enum kv_liability_class)cls, lang));
        fputs("</text>\n  </g>\n", f);
    }
    fputs("</svg>\n", f);
    return ferror(f) ? KV_ERR_IO : 0;
}
