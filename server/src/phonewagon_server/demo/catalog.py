"""What the demo is made of: the caller-id area codes and each company with its campaigns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Caller ids come from 555-0100..0199, the fiction range of every area code; the city is what a
# CNAM lookup would show for the area code.
_AREA_CODES = """201 Jersey City NJ, 202 Washington DC, 203 New Haven CT, 205 Birmingham AL,
206 Seattle WA, 207 Portland ME, 208 Boise ID, 209 Stockton CA, 210 San Antonio TX, 212 New York NY,
213 Los Angeles CA, 214 Dallas TX, 215 Philadelphia PA, 216 Cleveland OH, 217 Springfield IL,
218 Duluth MN, 219 Gary IN, 224 Elgin IL, 225 Baton Rouge LA, 228 Gulfport MS, 229 Albany GA,
231 Muskegon MI, 234 Akron OH, 239 Fort Myers FL, 240 Silver Spring MD, 248 Troy MI, 251 Mobile AL,
252 Greenville NC, 253 Tacoma WA, 254 Waco TX, 256 Huntsville AL, 260 Fort Wayne IN,
262 Kenosha WI, 267 Philadelphia PA, 269 Kalamazoo MI, 270 Bowling Green KY, 281 Houston TX,
301 Frederick MD, 302 Wilmington DE, 303 Denver CO, 304 Charleston WV, 305 Miami FL,
307 Cheyenne WY, 308 Grand Island NE, 309 Peoria IL, 310 Santa Monica CA, 312 Chicago IL,
313 Detroit MI, 314 Saint Louis MO, 315 Syracuse NY, 316 Wichita KS, 317 Indianapolis IN,
318 Shreveport LA, 319 Cedar Rapids IA, 320 Saint Cloud MN, 321 Melbourne FL, 323 Los Angeles CA,
325 Abilene TX, 330 Akron OH, 334 Montgomery AL, 336 Greensboro NC, 337 Lafayette LA, 339 Lynn MA,
347 Brooklyn NY, 351 Lowell MA, 352 Gainesville FL, 360 Vancouver WA, 361 Corpus Christi TX,
386 Daytona Beach FL, 401 Providence RI, 402 Omaha NE, 404 Atlanta GA, 405 Oklahoma City OK,
406 Billings MT, 407 Orlando FL, 408 San Jose CA, 409 Beaumont TX, 410 Baltimore MD,
412 Pittsburgh PA, 413 Springfield MA, 414 Milwaukee WI, 415 San Francisco CA, 417 Springfield MO,
419 Toledo OH, 423 Chattanooga TN, 424 Torrance CA, 425 Bellevue WA, 430 Tyler TX, 432 Midland TX,
434 Lynchburg VA, 435 Saint George UT, 440 Lorain OH, 443 Baltimore MD, 469 Dallas TX, 478 Macon GA,
479 Fort Smith AR, 480 Mesa AZ, 484 Allentown PA, 501 Little Rock AR, 502 Louisville KY,
503 Portland OR, 504 New Orleans LA, 505 Albuquerque NM, 507 Rochester MN, 508 Worcester MA,
509 Spokane WA, 510 Oakland CA, 512 Austin TX, 513 Cincinnati OH, 515 Des Moines IA,
516 Hempstead NY, 517 Lansing MI, 518 Albany NY, 520 Tucson AZ, 530 Chico CA, 540 Roanoke VA,
541 Eugene OR, 559 Fresno CA, 561 West Palm Beach FL, 562 Long Beach CA, 563 Davenport IA,
570 Scranton PA, 571 Arlington VA, 573 Columbia MO, 574 South Bend IN, 580 Lawton OK,
585 Rochester NY, 586 Warren MI, 601 Jackson MS, 602 Phoenix AZ, 603 Manchester NH,
605 Sioux Falls SD, 606 Ashland KY, 607 Binghamton NY, 608 Madison WI, 609 Trenton NJ,
610 Allentown PA, 612 Minneapolis MN, 614 Columbus OH, 615 Nashville TN, 616 Grand Rapids MI,
617 Boston MA, 618 Belleville IL, 619 San Diego CA, 620 Dodge City KS, 623 Glendale AZ,
626 Pasadena CA, 630 Naperville IL, 631 Islip NY, 636 O Fallon MO, 646 New York NY,
650 San Mateo CA, 651 Saint Paul MN, 661 Bakersfield CA, 662 Tupelo MS, 678 Atlanta GA,
682 Fort Worth TX, 701 Fargo ND, 702 Las Vegas NV, 703 Arlington VA, 704 Charlotte NC,
706 Augusta GA, 707 Santa Rosa CA, 708 Cicero IL, 712 Sioux City IA, 713 Houston TX, 714 Anaheim CA,
715 Eau Claire WI, 716 Buffalo NY, 717 Lancaster PA, 718 Bronx NY, 719 Colorado Springs CO,
720 Denver CO, 724 New Castle PA, 727 Saint Petersburg FL, 731 Jackson TN, 732 New Brunswick NJ,
734 Ann Arbor MI, 740 Zanesville OH, 747 Burbank CA, 754 Fort Lauderdale FL, 757 Virginia Beach VA,
760 Oceanside CA, 763 Brooklyn Park MN, 765 Lafayette IN, 770 Marietta GA, 772 Port Saint Lucie FL,
773 Chicago IL, 774 Worcester MA, 775 Reno NV, 781 Lynn MA, 785 Topeka KS, 786 Miami FL,
801 Salt Lake City UT, 802 Burlington VT, 803 Columbia SC, 804 Richmond VA, 805 Oxnard CA,
806 Lubbock TX, 808 Honolulu HI, 810 Flint MI, 812 Evansville IN, 813 Tampa FL, 814 Erie PA,
815 Rockford IL, 816 Kansas City MO, 817 Fort Worth TX, 818 Van Nuys CA, 828 Asheville NC,
830 New Braunfels TX, 831 Salinas CA, 832 Houston TX, 843 Charleston SC, 845 Poughkeepsie NY,
847 Evanston IL, 850 Tallahassee FL, 856 Camden NJ, 857 Boston MA, 858 San Diego CA,
859 Lexington KY, 860 Hartford CT, 862 Newark NJ, 863 Lakeland FL, 864 Greenville SC,
865 Knoxville TN, 870 Jonesboro AR, 901 Memphis TN, 903 Tyler TX, 904 Jacksonville FL,
907 Anchorage AK, 908 Elizabeth NJ, 909 San Bernardino CA, 910 Fayetteville NC, 912 Savannah GA,
913 Kansas City KS, 914 Yonkers NY, 915 El Paso TX, 916 Sacramento CA, 917 New York NY,
918 Tulsa OK, 919 Raleigh NC, 920 Green Bay WI, 925 Concord CA, 928 Flagstaff AZ, 929 Bronx NY,
931 Clarksville TN, 937 Dayton OH, 941 Sarasota FL, 949 Irvine CA, 951 Riverside CA,
952 Bloomington MN, 954 Fort Lauderdale FL, 956 Laredo TX, 970 Fort Collins CO, 971 Portland OR,
972 Dallas TX, 973 Newark NJ, 978 Lowell MA, 979 Bryan TX, 980 Charlotte NC, 985 Houma LA,
989 Saginaw MI"""


def _listed(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(","))


def fictional_numbers() -> list[tuple[str, str]]:
    """(E.164 number, caller-id name) for 555-0100..0199 of every listed area code."""
    numbers: list[tuple[str, str]] = []
    for entry in _listed(_AREA_CODES):
        area_code, place = entry.split(" ", 1)
        city, state = place.rsplit(" ", 1)
        # Caller id as the seed shows it: the city padded to 13 characters, then the state.
        name = f"{city[:12]:<13}{state.title()}"
        numbers += [(f"+1{area_code}55501{line:02d}", name) for line in range(100)]
    return numbers


@dataclass(frozen=True)
class CampaignSpec:
    id: str
    name: str  # also the marketing source its tracking number is shown for
    share: float
    tracking_number: str


@dataclass(frozen=True)
class CompanySpec:
    name: str
    site: str
    business_number: str  # where its tracking numbers forward calls to
    utc_offset_hours: int
    share: float
    campaigns: tuple[CampaignSpec, ...]
    pages: tuple[str, ...]
    keywords: tuple[str, ...]
    ad_campaigns: tuple[str, ...]
    unbounce_pages: tuple[str, ...]


COMPANIES: Final = (
    CompanySpec(
        name="Phonewagon",
        site="https://www.phonewagon.example",
        business_number="+15035550100",
        utc_offset_hours=-5,
        share=0.25,
        campaigns=(
            CampaignSpec("s2210", "Google Ads", 0.36, "+18445550100"),
            CampaignSpec("s2211", "Bing Ads", 0.10, "+18445550101"),
            CampaignSpec("s2212", "Facebook", 0.20, "+18445550102"),
            CampaignSpec("s2213", "Organic search", 0.22, "+18445550103"),
            CampaignSpec("s2214", "Direct", 0.12, "+18445550104"),
        ),
        pages=_listed(
            "/, /pricing, /features/call-tracking, /features/dynamic-number-insertion,"
            " /integrations/google-ads, /book-a-demo"
        ),
        keywords=_listed(
            "call tracking software, call tracking, phone call tracking,"
            " call tracking for agencies, dynamic number insertion, google ads call tracking,"
            " phonewagon"
        ),
        ad_campaigns=_listed("brand, call-tracking-generic, agencies, competitors"),
        unbounce_pages=_listed(
            "https://try.phonewagon.example/agency-trial, https://try.phonewagon.example/free-trial"
        ),
    ),
    CompanySpec(
        name="Jake's rake company",
        site="https://www.jakesrakes.example",
        business_number="+12065550100",
        utc_offset_hours=-8,
        share=0.30,
        campaigns=(
            CampaignSpec("s2220", "Google Ads", 0.38, "+18445550110"),
            CampaignSpec("s2221", "Facebook", 0.22, "+18445550111"),
            CampaignSpec("s2222", "Yahoo organic", 0.12, "+18445550112"),
            CampaignSpec("s2223", "Billboard", 0.13, "+18445550113"),
            CampaignSpec("s2224", "Direct", 0.15, "+18445550114"),
        ),
        pages=_listed(
            "/, /shop/leaf-rakes, /shop/garden-rakes, /shop/bamboo-rakes, /leaf-cleanup, /contact"
        ),
        keywords=_listed(
            "leaf rake, best leaf rake, garden rake, bamboo rake, rake repair near me,"
            " leaf cleanup service, buy rake online"
        ),
        ad_campaigns=_listed("fall-leaf-season, garden-tools, leaf-cleanup-service"),
        unbounce_pages=_listed(
            "https://deals.jakesrakes.example/fall-sale,"
            " https://deals.jakesrakes.example/leaf-cleanup-quote"
        ),
    ),
    CompanySpec(
        name="Brightside Family Dental",
        site="https://www.brightsidedental.example",
        business_number="+17205550100",
        utc_offset_hours=-7,
        share=0.45,
        campaigns=(
            CampaignSpec("s2230", "Google Ads", 0.32, "+18445550120"),
            CampaignSpec("s2231", "Yelp", 0.16, "+18445550121"),
            CampaignSpec("s2232", "Organic search", 0.20, "+18445550122"),
            CampaignSpec("s2233", "Facebook", 0.10, "+18445550123"),
            CampaignSpec("s2234", "Billboard", 0.10, "+18445550124"),
            CampaignSpec("s2235", "Direct", 0.12, "+18445550125"),
        ),
        pages=_listed(
            "/, /services/emergency-dentistry, /services/teeth-whitening,"
            " /services/dental-implants, /services/invisalign, /new-patients, /contact"
        ),
        keywords=_listed(
            "emergency dentist, dentist near me, emergency dentist near me, teeth whitening,"
            " dental implants cost, invisalign, pediatric dentist, tooth extraction"
        ),
        ad_campaigns=_listed("emergency-dentist, implants, invisalign, new-patient-special"),
        unbounce_pages=_listed(
            "https://offers.brightsidedental.example/new-patient-special,"
            " https://offers.brightsidedental.example/free-whitening"
        ),
    ),
)
