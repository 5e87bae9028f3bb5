using System;
using System.Globalization;
using System.Management.Automation;
using System.Text;
using System.Xml;

namespace PsIpc
{
    /// <summary>
    /// Writes the CliXml that PSSerializer writes, for the most common record shape only: a
    /// [pscustomobject] whose members are all note properties holding null, string, bool, int, long,
    /// double, decimal, DateTime or Guid. PSSerializer spends ~45 us on such an object; this takes a few.
    /// Anything else (other types, nested objects, wrapped values, strings PowerShell would escape,
    /// -Depth 0) returns false and goes through PSSerializer, so fidelity is PSSerializer's by construction.
    /// A Pester test checks that both round-trip to the same Deserialized object.
    /// </summary>
    internal static class FastCliXml
    {
        private const string Header = "<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj RefId=\"0\"><TN RefId=\"0\">";

        public static bool TryWrite(object value, int depth, StringBuilder sb)
        {
            if (depth < 1 || !(value is PSObject pso) || !(pso.BaseObject is PSCustomObject)) return false;
            sb.Clear();
            sb.Append(Header);
            foreach (string typeName in pso.TypeNames)
            {
                if (!IsPlain(typeName)) return false;
                sb.Append("<T>").Append(typeName).Append("</T>");
            }
            sb.Append("</TN><MS>");
            foreach (PSPropertyInfo property in pso.Properties)
            {
                if (property.MemberType != PSMemberTypes.NoteProperty || !IsPlain(property.Name)) return false;
                if (!TryWriteValue(property.Name, property.Value, sb)) return false;
            }
            sb.Append("</MS></Obj></Objs>");
            return true;
        }

        private static bool TryWriteValue(string name, object value, StringBuilder sb)
        {
            switch (value)
            {
                case null:
                    sb.Append("<Nil N=\"").Append(name).Append("\" />");
                    return true;
                case string s:
                    if (!IsPlain(s)) return false;
                    return Element(sb, "S", name, s);
                case bool b:
                    return Element(sb, "B", name, b ? "true" : "false");
                case int i:
                    return Element(sb, "I32", name, XmlConvert.ToString(i));
                case long l:
                    return Element(sb, "I64", name, XmlConvert.ToString(l));
                case double d:
                    return Element(sb, "Db", name, XmlConvert.ToString(d));
                case decimal m:
                    return Element(sb, "D", name, XmlConvert.ToString(m));
                case DateTime dt:
                    return Element(sb, "DT", name, XmlConvert.ToString(dt, XmlDateTimeSerializationMode.RoundtripKind));
                case Guid g:
                    return Element(sb, "G", name, g.ToString("D", CultureInfo.InvariantCulture));
                default:
                    return false; // PSObject-wrapped values, collections, other types: PSSerializer decides
            }
        }

        private static bool Element(StringBuilder sb, string tag, string name, string text)
        {
            sb.Append('<').Append(tag).Append(" N=\"").Append(name).Append("\">");
            foreach (char c in text)
            {
                switch (c)
                {
                    case '<': sb.Append("&lt;"); break;
                    case '>': sb.Append("&gt;"); break;
                    case '&': sb.Append("&amp;"); break;
                    default: sb.Append(c); break;
                }
            }
            sb.Append("</").Append(tag).Append('>');
            return true;
        }

        // Text PowerShell writes unchanged: no control characters (it escapes them as _xHHHH_), no "_x"
        // (which it escapes so it cannot be read as such an escape), no surrogates or non-characters, and
        // no characters that need escaping inside an attribute. Anything else takes the PSSerializer path.
        private static bool IsPlain(string text)
        {
            if (text == null) return false;
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c < 0x20 || c >= 0xD800 || c == '"' || c == '\'') return false;
                if (c == '_' && i + 1 < text.Length && (text[i + 1] == 'x' || text[i + 1] == 'X')) return false;
            }
            return true;
        }
    }
}
